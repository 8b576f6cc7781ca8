// registry.h — the backends this build knows, in order of preference: device backends first, the CPU
// last as the fallback (the pattern of ggml's ggml-backend-reg.cpp). An engine names one at creation
// ("auto" takes the first that is available here and supports every op the model needs).
#pragma once
#include <string>

#include "backend.h"

namespace tuft {

struct BackendReg {
  const char *name;    // "cpu", "cpu-builtin"
  const char *device;  // what it computes on: "cpu:openblas"
  bool (*available)();  // whether it can run on this machine (a CUDA entry: a device is present)
  te_status (*create)(Backend **out);
};

int backend_count();
const BackendReg &backend_reg(int i);  // i in [0, backend_count())
// The registered names, for messages: "cpu, cpu-builtin".
std::string backend_names();

// TE_OK when `name` (nullptr or "auto" included) names a backend that is available here; else as below.
te_status backend_check(const char *name);
// Creates the backend `name` (nullptr or "auto": the first available one that supports every need).
// TE_EUNSUPPORTED, naming what this build has, when the name is unknown, not available here, or
// lacks an op the caller needs.
te_status backend_create(const char *name, const OpNeed *needs, int n_needs, BackendPtr *out);

}  // namespace tuft
