// config.h — the model hyper-parameters read from a Hugging Face config.json (Qwen3, Qwen2, Llama).
#pragma once
#include <string>

#include "../common/json.h"

namespace tuft {

enum class Arch { Qwen3, Qwen2, Llama };

struct Config {
  Arch arch = Arch::Llama;
  std::string arch_name;  // "qwen3" | "qwen2" | "llama"
  int V = 0;              // vocab
  int C = 0;              // hidden
  int L = 0;              // layers
  int NH = 0;             // query heads
  int NKV = 0;            // key/value heads
  int HD = 0;             // head dim
  int FF = 0;             // MLP intermediate
  int max_pos = 0;        // max_position_embeddings
  float eps = 1e-6f;      // RMSNorm epsilon
  bool tie = false;       // lm_head shares embed_tokens
  bool qkv_bias = false;  // Qwen2 (and attention_bias models)
  bool o_bias = false;    // attention_bias models (Llama/Qwen3 with attention_bias: true)
  bool qk_norm = false;   // Qwen3 per-head RMSNorm of q and k
  double rope_theta = 10000.0;
  // rope_scaling type llama3 (factor 0 = no scaling)
  double rope_factor = 0, rope_low_freq = 1, rope_high_freq = 4;
  int rope_orig_max_pos = 8192;

  int Q() const { return NH * HD; }
  int KV() const { return NKV * HD; }
  int QKV() const { return Q() + 2 * KV(); }
};

te_status config_from_json(const Json &j, Config *out);
te_status config_load(const std::string &model_dir, Config *out);

}  // namespace tuft
