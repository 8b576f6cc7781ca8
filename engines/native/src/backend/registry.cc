// registry.cc — the list of backends and the choice of one. A CUDA backend goes before the CPU
// entries, guarded by its build option.
#include "registry.h"

#include <vector>

#include "../cpu/cpu.h"

namespace tuft {

namespace {

const std::vector<const BackendReg *> &registry() {
  static const std::vector<const BackendReg *> list = {&cpu_reg(), &cpu_builtin_reg()};
  return list;
}

bool is_auto(const char *name) { return !name || !*name || std::string(name) == "auto"; }

// The first need the backend cannot run, or nullptr.
const OpNeed *unsupported(const Backend &be, const OpNeed *needs, int n_needs) {
  for (int i = 0; i < n_needs; i++)
    if (!be.op->supports(be, needs[i].op, needs[i].shape)) return &needs[i];
  return nullptr;
}

}  // namespace

int backend_count() { return int(registry().size()); }
const BackendReg &backend_reg(int i) { return *registry()[size_t(i)]; }

std::string backend_names() {
  std::string s;
  for (const BackendReg *r : registry()) s += (s.empty() ? "" : ", ") + std::string(r->name);
  return s;
}

te_status backend_check(const char *name) {
  if (is_auto(name)) return TE_OK;
  for (const BackendReg *r : registry())
    if (std::string(name) == r->name) {
      if (r->available()) return TE_OK;
      return TE_FAIL(TE_EUNSUPPORTED, "backend '%s' is not available on this machine (backends: auto, %s)", name,
                     backend_names().c_str());
    }
  return TE_FAIL(TE_EUNSUPPORTED, "unknown backend '%s' (backends: auto, %s)", name, backend_names().c_str());
}

te_status backend_create(const char *name, const OpNeed *needs, int n_needs, BackendPtr *out) {
  out->reset();
  TE_TRY(backend_check(name));
  const bool any = is_auto(name);
  for (const BackendReg *r : registry()) {
    if (any ? !r->available() : std::string(name) != r->name) continue;
    Backend *be = nullptr;
    TE_TRY(r->create(&be));
    BackendPtr p(be);
    if (const OpNeed *n = unsupported(*p, needs, n_needs)) {
      if (any) continue;
      const OpShape &s = n->shape;
      return TE_FAIL(TE_EUNSUPPORTED,
                     "backend '%s' does not support %s at rows %d, in %d, out %d, rank %d, heads %d/%d, head dim %d",
                     name, op_name(n->op), s.rows, s.in, s.out, s.rank, s.heads, s.kv_heads, s.head_dim);
    }
    *out = std::move(p);
    return TE_OK;
  }
  return TE_FAIL(TE_EUNSUPPORTED, "no backend runs this model (backends: %s)", backend_names().c_str());
}

}  // namespace tuft
