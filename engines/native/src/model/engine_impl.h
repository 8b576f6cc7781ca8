// engine_impl.h — what a te_engine holds. Shared by the C ABI implementations in src/model,
// src/checkpoint and src/sample (the sampler keeps its state in `sampler`, type-erased so the core
// builds without it).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "../backend/buffer.h"
#include "../common/pool.h"
#include "model.h"

struct te_engine {
  // The backend every op runs on, chosen at creation. First, so that it outlives every buffer it gave.
  tuft::BackendPtr backend;
  tuft::Model model;
  std::unique_ptr<tuft::Pool> pool;
  int n_threads = 1;
  int max_lora_rank = 0;
  // Adapters by server-minted id. shared_ptr so a running sample can keep a dropped adapter alive.
  std::map<std::string, std::shared_ptr<tuft::Adapter>> adapters;
  tuft::DeviceBuffer work;  // activations + backward scratch of te_forward_backward, grown on demand
  int head_rows = 0;  // rows per LM-head block (0: as many as fit 2^24 logits); tests set it small
  std::shared_ptr<void> sampler;  // owned by src/sample/
};

namespace tuft {

// Finds an adapter by id (nullptr when unknown).
Adapter *find_adapter(te_engine *e, const char *id);
// Engine construction from an in-memory model (te_engine_create uses it after loading; benchmarks
// and tests use it with model_init_random). opts->backend chooses the backend (registry.h).
te_status engine_create_from_model(Model &&m, const te_engine_options *opts, te_engine **out);

}  // namespace tuft

// Every C entry point: installs the engine's pool and turns exceptions into statuses.
#define TE_API_BEGIN(e) \
  try {                 \
    ::tuft::PoolScope te_pool_scope_((e) ? (e)->pool.get() : nullptr);
#define TE_API_END                                                                 \
  }                                                                                \
  catch (const std::bad_alloc &) {                                                 \
    return TE_FAIL(TE_ENOMEM, "out of memory");                                    \
  }                                                                                \
  catch (const std::exception &ex) {                                               \
    return TE_FAIL(TE_EINTERNAL, "internal error: %s", ex.what());                 \
  }                                                                                \
  catch (...) {                                                                    \
    return TE_FAIL(TE_EINTERNAL, "internal error");                                \
  }
