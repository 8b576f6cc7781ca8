// engine.cc — C ABI: engine lifetime, model info, adapter create / drop / snapshot.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <thread>

#include "../backend/registry.h"
#include "engine_impl.h"

namespace tuft {

Adapter *find_adapter(te_engine *e, const char *id) {
  if (!id) return nullptr;
  auto it = e->adapters.find(id);
  return it == e->adapters.end() ? nullptr : it->second.get();
}

te_status engine_create_from_model(Model &&m, const te_engine_options *opts, te_engine **out) {
  auto e = std::make_unique<te_engine>();
  int hw = int(std::thread::hardware_concurrency());
  e->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : (hw > 0 ? hw : 1);
  e->max_lora_rank = opts && opts->max_lora_rank > 0 ? opts->max_lora_rank : 64;
  const std::vector<OpNeed> needs = model_op_needs(m.cfg, e->max_lora_rank);
  TE_TRY(backend_create(opts ? opts->backend : nullptr, needs.data(), int(needs.size()), &e->backend));
  e->model = std::move(m);
  e->pool = std::make_unique<Pool>(e->n_threads);
  *out = e.release();
  return TE_OK;
}

static te_status check_id(const char *id, const char *what) {
  if (!id || !*id) return TE_FAIL(TE_EINVAL, "%s: adapter id must be a non-empty string", what);
  if (std::strlen(id) > 256) return TE_FAIL(TE_EINVAL, "%s: adapter id longer than 256 bytes", what);
  return TE_OK;
}

}  // namespace tuft

using namespace tuft;

extern "C" {

te_status te_engine_create(const char *model_dir, const te_engine_options *opts, te_engine **out) {
  if (!model_dir || !out) return TE_FAIL(TE_EINVAL, "te_engine_create: model_dir and out are required");
  *out = nullptr;
  if (opts && (opts->n_threads < 0 || opts->max_lora_rank < 0 || opts->max_seq_len < 0))
    return TE_FAIL(TE_EINVAL, "te_engine_create: negative option");
  if (opts) TE_TRY(backend_check(opts->backend));  // before the weights are read
  te_engine *e = nullptr;
  TE_API_BEGIN(e)
  Model m;
  TE_TRY(model_load(&m, model_dir, opts ? opts->max_seq_len : 0));
  return engine_create_from_model(std::move(m), opts, out);
  TE_API_END
}

void te_engine_destroy(te_engine *e) { delete e; }

int te_backend_count(void) { return backend_count(); }

te_status te_backend_info(int i, te_backend_desc *out) {
  if (!out || i < 0 || i >= backend_count()) return TE_FAIL(TE_EINVAL, "te_backend_info: no backend %d", i);
  const BackendReg &r = backend_reg(i);
  out->name = r.name;
  out->device = r.device;
  out->available = r.available() ? 1 : 0;
  return TE_OK;
}

te_status te_engine_info(const te_engine *e, te_model_info *out) {
  if (!e || !out) return TE_FAIL(TE_EINVAL, "te_engine_info: engine and out are required");
  const Config &c = e->model.cfg;
  std::memset(out, 0, sizeof *out);
  std::snprintf(out->arch, sizeof out->arch, "%s", c.arch_name.c_str());
  std::snprintf(out->backend, sizeof out->backend, "%s", e->backend->name.c_str());
  std::snprintf(out->device, sizeof out->device, "%s", e->backend->device.c_str());
  out->n_threads = e->n_threads;
  out->vocab_size = c.V;
  out->hidden_size = c.C;
  out->n_layers = c.L;
  out->n_heads = c.NH;
  out->n_kv_heads = c.NKV;
  out->head_dim = c.HD;
  out->intermediate_size = c.FF;
  out->max_position = e->model.max_seq;
  out->tie_word_embeddings = c.tie;
  return TE_OK;
}

te_status te_adapter_create(te_engine *e, const char *id, const te_lora_config *cfg) {
  if (!e || !cfg) return TE_FAIL(TE_EINVAL, "te_adapter_create: engine and config are required");
  TE_TRY(check_id(id, "te_adapter_create"));
  TE_API_BEGIN(e)
  if (e->adapters.count(id)) return TE_FAIL(TE_EINVAL, "adapter '%s' already exists", id);
  if (cfg->rank < 1 || cfg->rank > e->max_lora_rank)
    return TE_FAIL(TE_EINVAL, "adapter '%s': rank %d outside [1, %d]", id, cfg->rank, e->max_lora_rank);
  if (!std::isfinite(cfg->alpha) || cfg->alpha <= 0)
    return TE_FAIL(TE_EINVAL, "adapter '%s': lora alpha must be a positive number", id);
  unsigned targets = lora_targets_from_flags(cfg->train_attn, cfg->train_mlp, cfg->train_unembed);
  if (!targets) return TE_FAIL(TE_EINVAL, "adapter '%s': no target (train_attn, train_mlp, train_unembed all 0)", id);
  auto a = std::make_shared<Adapter>();
  TE_TRY(adapter_alloc(a.get(), e->model.cfg, id, cfg->rank, cfg->alpha, targets, true));
  adapter_init_kaiming(a.get(), cfg->seed);
  e->adapters[id] = std::move(a);
  return TE_OK;
  TE_API_END
}

te_status te_adapter_drop(te_engine *e, const char *id) {
  if (!e) return TE_FAIL(TE_EINVAL, "te_adapter_drop: engine is required");
  TE_TRY(check_id(id, "te_adapter_drop"));
  if (!e->adapters.erase(id)) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", id);
  return TE_OK;
}

te_status te_adapter_snapshot(te_engine *e, const char *src_id, const char *dst_id) {
  if (!e) return TE_FAIL(TE_EINVAL, "te_adapter_snapshot: engine is required");
  TE_TRY(check_id(src_id, "te_adapter_snapshot"));
  TE_TRY(check_id(dst_id, "te_adapter_snapshot"));
  TE_API_BEGIN(e)
  Adapter *src = find_adapter(e, src_id);
  if (!src) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", src_id);
  if (e->adapters.count(dst_id)) return TE_FAIL(TE_EINVAL, "adapter '%s' already exists", dst_id);
  auto a = std::make_shared<Adapter>();
  TE_TRY(adapter_alloc(a.get(), e->model.cfg, dst_id, src->R, src->alpha, src->targets, false));
  a->scale = src->scale;
  std::memcpy(a->params.data(), src->params.data(), sizeof(float) * src->n_params);
  e->adapters[dst_id] = std::move(a);
  return TE_OK;
  TE_API_END
}

}  // extern "C"
