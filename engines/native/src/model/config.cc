// config.cc — config.json → Config, accepting both transformers styles (rope_theta at top level or in
// rope_parameters; torch_dtype or dtype) and rejecting what the engine does not implement by name.
#include "config.h"

#include <cmath>

namespace tuft {

static te_status get_int(const Json &j, const char *key, int def, bool required, int *out) {
  const Json *v = j.get(key);
  if (!v || v->is_null()) {
    if (required) return TE_FAIL(TE_EINVAL, "config.json: missing %s", key);
    *out = def;
    return TE_OK;
  }
  if (!v->is_num() || v->num != std::floor(v->num) || v->num < 0 || v->num > 2e9)
    return TE_FAIL(TE_EINVAL, "config.json: %s must be a non-negative integer", key);
  *out = int(v->num);
  return TE_OK;
}

static double get_num(const Json &j, const char *key, double def) {
  const Json *v = j.get(key);
  return v && v->is_num() ? v->num : def;
}

static bool get_bool(const Json &j, const char *key, bool def) {
  const Json *v = j.get(key);
  return v && v->kind == Json::Bool ? v->b : def;
}

te_status config_from_json(const Json &j, Config *out) {
  Config c;
  if (j.kind != Json::Object) return TE_FAIL(TE_EINVAL, "config.json is not an object");
  std::string arch;
  const Json *archs = j.get("architectures");
  if (archs && archs->kind == Json::Array && !archs->arr.empty() && archs->arr[0].is_str()) arch = archs->arr[0].str;
  else if (const Json *mt = j.get("model_type"); mt && mt->is_str()) arch = mt->str;
  if (arch == "Qwen3ForCausalLM" || arch == "qwen3") c.arch = Arch::Qwen3, c.arch_name = "qwen3", c.qk_norm = true;
  else if (arch == "Qwen2ForCausalLM" || arch == "qwen2") c.arch = Arch::Qwen2, c.arch_name = "qwen2", c.qkv_bias = true;
  else if (arch == "LlamaForCausalLM" || arch == "llama") c.arch = Arch::Llama, c.arch_name = "llama";
  else
    return TE_FAIL(TE_EUNSUPPORTED,
                   "unsupported architecture '%s' (supported: Qwen3ForCausalLM, Qwen2ForCausalLM, LlamaForCausalLM)",
                   arch.empty() ? "(none)" : arch.c_str());

  TE_TRY(get_int(j, "vocab_size", 0, true, &c.V));
  TE_TRY(get_int(j, "hidden_size", 0, true, &c.C));
  TE_TRY(get_int(j, "num_hidden_layers", 0, true, &c.L));
  TE_TRY(get_int(j, "num_attention_heads", 0, true, &c.NH));
  TE_TRY(get_int(j, "num_key_value_heads", c.NH, false, &c.NKV));
  TE_TRY(get_int(j, "intermediate_size", 0, true, &c.FF));
  TE_TRY(get_int(j, "max_position_embeddings", 2048, false, &c.max_pos));
  if (c.NH == 0 || c.C == 0 || c.V == 0 || c.L == 0 || c.FF == 0 || c.max_pos == 0)
    return TE_FAIL(TE_EINVAL, "config.json: zero-sized dimension");
  TE_TRY(get_int(j, "head_dim", c.C / c.NH, false, &c.HD));
  if (c.NKV == 0 || c.NH % c.NKV != 0)
    return TE_FAIL(TE_EINVAL, "config.json: num_attention_heads %d not a multiple of num_key_value_heads %d", c.NH,
                   c.NKV);
  if (c.HD == 0 || c.HD % 2 != 0) return TE_FAIL(TE_EINVAL, "config.json: head_dim %d must be even", c.HD);
  c.eps = float(get_num(j, "rms_norm_eps", 1e-6));
  c.tie = get_bool(j, "tie_word_embeddings", false);
  if (get_bool(j, "attention_bias", false)) c.qkv_bias = true, c.o_bias = c.arch != Arch::Qwen2;
  if (get_bool(j, "mlp_bias", false)) return TE_FAIL(TE_EUNSUPPORTED, "config.json: mlp_bias is not supported");
  if (get_bool(j, "use_sliding_window", false))
    return TE_FAIL(TE_EUNSUPPORTED, "config.json: use_sliding_window is not supported");
  if (const Json *act = j.get("hidden_act"); act && act->is_str() && act->str != "silu")
    return TE_FAIL(TE_EUNSUPPORTED, "config.json: hidden_act '%s' is not supported (silu only)", act->str.c_str());

  // Rope: newer configs nest theta and the scaling type in rope_parameters, older ones use
  // rope_theta + rope_scaling.
  const Json *rp = j.get("rope_parameters");
  c.rope_theta = get_num(j, "rope_theta", rp ? get_num(*rp, "rope_theta", 10000.0) : 10000.0);
  const Json *rs = j.get("rope_scaling");
  if (!rs || rs->is_null()) rs = rp;
  if (rs && rs->kind == Json::Object) {
    const Json *t = rs->get("rope_type");
    if (!t) t = rs->get("type");
    std::string type = t && t->is_str() ? t->str : "default";
    if (type == "llama3") {
      c.rope_factor = get_num(*rs, "factor", 8.0);
      c.rope_low_freq = get_num(*rs, "low_freq_factor", 1.0);
      c.rope_high_freq = get_num(*rs, "high_freq_factor", 4.0);
      c.rope_orig_max_pos = int(get_num(*rs, "original_max_position_embeddings", 8192));
      if (c.rope_high_freq == c.rope_low_freq || c.rope_factor <= 0)
        return TE_FAIL(TE_EINVAL, "config.json: bad llama3 rope_scaling parameters");
    } else if (type != "default") {
      return TE_FAIL(TE_EUNSUPPORTED, "config.json: rope type '%s' is not supported (default, llama3)",
                     type.c_str());
    }
  }
  *out = c;
  return TE_OK;
}

te_status config_load(const std::string &model_dir, Config *out) {
  Json j;
  TE_TRY(json_parse_file(model_dir + "/config.json", &j));
  return config_from_json(j, out);
}

}  // namespace tuft
