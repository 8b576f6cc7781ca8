// checkpoint.cc — adapter state on disk, PEFT layout: adapter_model.safetensors (fp32, PEFT tensor
// names) + adapter_config.json, and for training checkpoints optimizer.safetensors (Adam moments as
// "<name>.exp_avg" / "<name>.exp_avg_sq", the step counter in the metadata). Files are fsynced; the
// caller makes the directory swap atomic. Loads read everything into new buffers first, so a failed
// load leaves the adapter as it was.
#include <cmath>
#include <cstdio>
#include <cstring>

#include "../common/json.h"
#include "../model/engine_impl.h"
#include "../model/safetensors.h"

namespace tuft {

namespace {

constexpr const char *WEIGHTS = "/adapter_model.safetensors";
constexpr const char *CONFIG = "/adapter_config.json";
constexpr const char *OPTIMIZER = "/optimizer.safetensors";

std::string num_str(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", x);
  return b;
}

std::string config_json(const Adapter &a) {
  std::string targets;
  for (int t = 0; t < LT_COUNT; t++)
    if (a.has(t)) targets += std::string(targets.empty() ? "" : ", ") + json_quote(lora_target_name(t));
  return "{\n"
         "  \"peft_type\": \"LORA\",\n"
         "  \"task_type\": \"CAUSAL_LM\",\n"
         "  \"base_model_name_or_path\": \"\",\n"
         "  \"r\": " + std::to_string(a.R) + ",\n"
         "  \"lora_alpha\": " + num_str(a.alpha) + ",\n"
         "  \"lora_dropout\": 0.0,\n"
         "  \"target_modules\": [" + targets + "],\n"
         "  \"bias\": \"none\",\n"
         "  \"fan_in_fan_out\": false,\n"
         "  \"inference_mode\": true,\n"
         "  \"init_lora_weights\": true,\n"
         "  \"use_rslora\": false,\n"
         "  \"use_dora\": false,\n"
         "  \"modules_to_save\": null,\n"
         "  \"layers_to_transform\": null,\n"
         "  \"rank_pattern\": {},\n"
         "  \"alpha_pattern\": {}\n"
         "}\n";
}

te_status write_weights(const Adapter &a, const std::string &dir) {
  std::vector<TensorOut> ts;
  for (const auto &e : a.entries) ts.push_back({e.name, {e.rows, e.cols}, a.params.data() + e.offset});
  TE_TRY(write_safetensors(dir + WEIGHTS, ts, {{"format", "pt"}}));
  return write_text_durable(dir + CONFIG, config_json(a));
}

// What an adapter_config.json says, in the terms the engine uses.
struct PeftConfig {
  int R = 0;
  float alpha = 0, scale = 0;
  unsigned targets = 0;  // from target_modules (a list of names)
  bool targets_listed = false;
};

te_status read_peft_config(const std::string &dir, PeftConfig *pc) {
  Json j;
  TE_TRY(json_parse_file(dir + CONFIG, &j));
  const Json *r = j.get("r"), *alpha = j.get("lora_alpha");
  if (const Json *pt = j.get("peft_type"); pt && pt->is_str() && pt->str != "LORA")
    return TE_FAIL(TE_EUNSUPPORTED, "%s%s: peft_type %s (LORA only)", dir.c_str(), CONFIG, pt->str.c_str());
  if (!r || !r->is_num() || r->num < 1 || r->num != std::floor(r->num))
    return TE_FAIL(TE_EINVAL, "%s%s: r must be a positive integer", dir.c_str(), CONFIG);
  pc->R = int(r->num);
  pc->alpha = alpha && alpha->is_num() ? float(alpha->num) : float(pc->R);
  const Json *rs = j.get("use_rslora");
  pc->scale = rs && rs->kind == Json::Bool && rs->b ? pc->alpha / std::sqrt(float(pc->R)) : pc->alpha / float(pc->R);
  for (const char *k : {"use_dora", "fan_in_fan_out"})
    if (const Json *v = j.get(k); v && v->kind == Json::Bool && v->b)
      return TE_FAIL(TE_EUNSUPPORTED, "%s%s: %s is not supported", dir.c_str(), CONFIG, k);
  for (const char *k : {"rank_pattern", "alpha_pattern"})
    if (const Json *v = j.get(k); v && v->kind == Json::Object && !v->obj.empty())
      return TE_FAIL(TE_EUNSUPPORTED, "%s%s: %s is not supported", dir.c_str(), CONFIG, k);
  if (const Json *tm = j.get("target_modules"); tm && tm->kind == Json::Array) {
    pc->targets_listed = true;
    for (const auto &x : tm->arr)
      for (int t = 0; t < LT_COUNT; t++)
        if (x.is_str() && x.str == lora_target_name(t)) pc->targets |= 1u << t;
  }
  return TE_OK;
}

// Reads every entry of `a`'s layout from ts into dst (fp32), tensor names suffixed by `suffix`.
te_status read_entries(const TensorSet &ts, const Adapter &a, const std::string &suffix, float *dst,
                       const std::string &file) {
  for (const auto &e : a.entries) {
    te_status st = ts.read_f32(e.name + suffix, {e.rows, e.cols}, dst + e.offset);
    if (st != TE_OK) return wrap_error(st, file);
  }
  return TE_OK;
}

// The LoRA targets whose tensors a PEFT file holds; every layer must have each target it uses.
te_status targets_in_file(const TensorSet &ts, const std::string &file, unsigned *out) {
  unsigned found = 0;
  for (const auto &kv : ts.all()) {
    bool known = false;
    for (int t = 0; t < LT_COUNT && !known; t++) {
      std::string key = std::string(t == LT_HEAD ? "lm_head" : lora_target_name(t)) + ".lora_";
      if (kv.first.find(key) != std::string::npos) found |= 1u << t, known = true;
    }
    if (!known)
      return TE_FAIL(TE_EUNSUPPORTED, "%s: tensor %s is not a LoRA weight of a supported target", file.c_str(),
                     kv.first.c_str());
  }
  if (!found) return TE_FAIL(TE_EINVAL, "%s: no LoRA tensors", file.c_str());
  *out = found;
  return TE_OK;
}

}  // namespace

}  // namespace tuft

using namespace tuft;

extern "C" {

te_status te_adapter_save(te_engine *e, const char *id, const char *dir, int with_optimizer) {
  if (!e || !dir) return TE_FAIL(TE_EINVAL, "te_adapter_save: engine and dir are required");
  TE_API_BEGIN(e)
  Adapter *a = find_adapter(e, id);
  if (!a) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", id ? id : "(null)");
  if (with_optimizer && !a->trainable)
    return TE_FAIL(TE_EINVAL, "adapter '%s' is inference-only: it has no optimizer state", id);
  std::string d = dir;
  TE_TRY(write_weights(*a, d));
  if (with_optimizer) {
    std::vector<TensorOut> ts;
    for (const auto &en : a->entries) {
      ts.push_back({en.name + ".exp_avg", {en.rows, en.cols}, a->m.data() + en.offset});
      ts.push_back({en.name + ".exp_avg_sq", {en.rows, en.cols}, a->v.data() + en.offset});
    }
    TE_TRY(write_safetensors(d + OPTIMIZER, ts, {{"step", std::to_string(a->step)}, {"optimizer", "adamw"}}));
  }
  return TE_OK;
  TE_API_END
}

te_status te_adapter_export_peft(te_engine *e, const char *id, const char *dir) {
  if (!e || !dir) return TE_FAIL(TE_EINVAL, "te_adapter_export_peft: engine and dir are required");
  TE_API_BEGIN(e)
  Adapter *a = find_adapter(e, id);
  if (!a) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", id ? id : "(null)");
  return write_weights(*a, dir);
  TE_API_END
}

te_status te_adapter_load(te_engine *e, const char *id, const char *dir, int with_optimizer) {
  if (!e || !dir) return TE_FAIL(TE_EINVAL, "te_adapter_load: engine and dir are required");
  TE_API_BEGIN(e)
  Adapter *a = find_adapter(e, id);
  if (!a) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", id ? id : "(null)");
  if (!a->trainable) return TE_FAIL(TE_EINVAL, "adapter '%s' is inference-only", id);
  std::string d = dir;
  PeftConfig pc;
  TE_TRY(read_peft_config(d, &pc));
  if (pc.R != a->R) return TE_FAIL(TE_EINVAL, "%s: rank %d does not match adapter '%s' (rank %d)", dir, pc.R, id, a->R);
  if (pc.targets_listed && pc.targets != a->targets)
    return TE_FAIL(TE_EINVAL, "%s: target_modules do not match adapter '%s'", dir, id);
  TensorSet ts;
  TE_TRY(ts.open_file(d + WEIGHTS));
  Buffer params, m, v;
  TE_TRY(params.alloc(a->n_params, "LoRA parameters"));
  TE_TRY(read_entries(ts, *a, "", params.data(), d + WEIGHTS));
  TE_TRY(m.alloc(a->n_params, "Adam first moments"));
  TE_TRY(v.alloc(a->n_params, "Adam second moments"));
  int64_t step = 0;
  if (with_optimizer) {
    TensorSet os;
    TE_TRY(os.open_file(d + OPTIMIZER));
    TE_TRY(read_entries(os, *a, ".exp_avg", m.data(), d + OPTIMIZER));
    TE_TRY(read_entries(os, *a, ".exp_avg_sq", v.data(), d + OPTIMIZER));
    auto it = os.metadata().find("step");
    char *end = nullptr;
    if (it != os.metadata().end()) step = std::strtoll(it->second.c_str(), &end, 10);
    if (it == os.metadata().end() || *end || step < 0)
      return TE_FAIL(TE_EINVAL, "%s%s: missing or bad step counter", dir, OPTIMIZER);
  }
  // Commit: nothing below can fail.
  std::memcpy(a->params.data(), params.data(), sizeof(float) * a->n_params);
  std::memcpy(a->m.data(), m.data(), sizeof(float) * a->n_params);
  std::memcpy(a->v.data(), v.data(), sizeof(float) * a->n_params);
  a->grads.zero();
  a->step = step;
  a->alpha = pc.alpha;
  a->scale = pc.scale;
  return TE_OK;
  TE_API_END
}

te_status te_adapter_import_peft(te_engine *e, const char *id, const char *dir) {
  if (!e || !dir || !id || !*id) return TE_FAIL(TE_EINVAL, "te_adapter_import_peft: engine, id and dir are required");
  TE_API_BEGIN(e)
  if (e->adapters.count(id)) return TE_FAIL(TE_EINVAL, "adapter '%s' already exists", id);
  std::string d = dir;
  PeftConfig pc;
  TE_TRY(read_peft_config(d, &pc));
  if (pc.R > e->max_lora_rank)
    return TE_FAIL(TE_EINVAL, "%s: rank %d over the engine's limit %d", dir, pc.R, e->max_lora_rank);
  TensorSet ts;
  TE_TRY(ts.open_file(d + WEIGHTS));
  unsigned targets = 0;
  TE_TRY(targets_in_file(ts, d + WEIGHTS, &targets));
  auto a = std::make_shared<Adapter>();
  TE_TRY(adapter_alloc(a.get(), e->model.cfg, id, pc.R, pc.alpha, targets, false));
  a->scale = pc.scale;
  TE_TRY(read_entries(ts, *a, "", a->params.data(), d + WEIGHTS));
  e->adapters[id] = std::move(a);
  return TE_OK;
  TE_API_END
}

}  // extern "C"
