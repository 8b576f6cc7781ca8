// weights.cc — the base weights: one allocation carved by a table of (Hugging Face name, shape,
// destination), filled from safetensors (converted to fp32) or from a seeded random generator.
#include <cmath>

#include "../common/pool.h"

#include "model.h"
#include "safetensors.h"

namespace tuft {

namespace {

struct WeightSlot {
  std::string name;             // Hugging Face tensor name
  std::vector<int64_t> shape;   // as stored
  size_t offset;                // into Model::mem
  bool is_norm;                 // initialised to 1 by model_init_random
};

// Lays out every base tensor; fused tensors (wqkv, wgu) are several slots at consecutive offsets.
std::vector<WeightSlot> weight_table(const Config &c, size_t *total) {
  std::vector<WeightSlot> t;
  size_t off = 0;
  auto add = [&](const std::string &name, std::vector<int64_t> shape, bool norm = false) {
    size_t n = 1;
    for (auto s : shape) n *= size_t(s);
    t.push_back({name, std::move(shape), off, norm});
    off += n;
  };
  auto pad = [&] { off = align16(off); };
  const int64_t C = c.C, Q = c.Q(), KV = c.KV(), FF = c.FF, HD = c.HD;
  add("model.embed_tokens.weight", {c.V, C});
  pad();
  for (int l = 0; l < c.L; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {C}, true), pad();
    add(p + "self_attn.q_proj.weight", {Q, C});
    add(p + "self_attn.k_proj.weight", {KV, C});
    add(p + "self_attn.v_proj.weight", {KV, C}), pad();
    if (c.qkv_bias) {
      add(p + "self_attn.q_proj.bias", {Q});
      add(p + "self_attn.k_proj.bias", {KV});
      add(p + "self_attn.v_proj.bias", {KV}), pad();
    }
    if (c.qk_norm) add(p + "self_attn.q_norm.weight", {HD}, true), pad(), add(p + "self_attn.k_norm.weight", {HD}, true), pad();
    add(p + "self_attn.o_proj.weight", {C, Q}), pad();
    if (c.o_bias) add(p + "self_attn.o_proj.bias", {C}), pad();
    add(p + "post_attention_layernorm.weight", {C}, true), pad();
    add(p + "mlp.gate_proj.weight", {FF, C});
    add(p + "mlp.up_proj.weight", {FF, C}), pad();
    add(p + "mlp.down_proj.weight", {C, FF}), pad();
  }
  add("model.norm.weight", {C}, true), pad();
  if (!c.tie) add("lm_head.weight", {c.V, C}), pad();
  *total = off;
  return t;
}

te_status alloc_and_point(Model *m, const Config &c, int max_seq, std::vector<WeightSlot> *table) {
  m->cfg = c;
  size_t total = 0;
  *table = weight_table(c, &total);
  TE_TRY(m->mem.alloc(total, "base weights"));
  const float *base = m->mem.data();
  auto at = [&](const std::string &name) -> const float * {
    for (const auto &s : *table)
      if (s.name == name) return base + s.offset;
    return nullptr;
  };
  m->wte = at("model.embed_tokens.weight");
  m->layers.resize(size_t(c.L));
  for (int l = 0; l < c.L; l++) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights &w = m->layers[size_t(l)];
    w.ln1 = at(p + "input_layernorm.weight");
    w.wqkv = at(p + "self_attn.q_proj.weight");
    w.bqkv = at(p + "self_attn.q_proj.bias");
    w.q_norm = at(p + "self_attn.q_norm.weight");
    w.k_norm = at(p + "self_attn.k_norm.weight");
    w.wo = at(p + "self_attn.o_proj.weight");
    w.bo = at(p + "self_attn.o_proj.bias");
    w.ln2 = at(p + "post_attention_layernorm.weight");
    w.wgu = at(p + "mlp.gate_proj.weight");
    w.wd = at(p + "mlp.down_proj.weight");
  }
  m->ln_f = at("model.norm.weight");
  m->lm_head = c.tie ? m->wte : at("lm_head.weight");
  m->max_seq = max_seq;
  return rope_table_init(&m->rope, c, max_seq);
}

}  // namespace

te_status model_load(Model *m, const std::string &dir, int max_seq) {
  Config c;
  TE_TRY(config_load(dir, &c));
  if (max_seq <= 0) max_seq = c.max_pos;
  TensorSet ts;
  TE_TRY(ts.open_model_dir(dir));
  std::vector<WeightSlot> table;
  TE_TRY(alloc_and_point(m, c, max_seq, &table));
  for (const auto &s : table) {
    te_status st = ts.read_f32(s.name, s.shape, m->mem.data() + s.offset);
    if (st != TE_OK) return wrap_error(st, dir);
  }
  return TE_OK;
}

te_status model_init_random(Model *m, const Config &cfg, uint64_t seed, int max_seq) {
  std::vector<WeightSlot> table;
  TE_TRY(alloc_and_point(m, cfg, max_seq > 0 ? max_seq : cfg.max_pos, &table));
  // Uniform with standard deviation 0.02, from a counter-based hash so blocks fill in parallel and
  // the result does not depend on the thread count.
  const float a = 0.02f * std::sqrt(3.f);
  for (size_t k = 0; k < table.size(); k++) {
    const WeightSlot &s = table[k];
    size_t n = 1;
    for (auto d : s.shape) n *= size_t(d);
    float *p = m->mem.data() + s.offset;
    parallel_for(n, 1 << 16, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; i++) {
        uint64_t z = seed + k * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;  // splitmix64
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        p[i] = s.is_norm ? 1.f : a * (float(z >> 40) * (2.f / 16777216.f) - 1.f);
      }
    });
  }
  return TE_OK;
}

}  // namespace tuft
