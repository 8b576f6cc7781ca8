// lora.cc — adapter layout (PEFT names, one buffer per family carved by the entries table) and init.
#include <cmath>
#include <random>

#include "model.h"

namespace tuft {

const char *lora_target_name(int t) {
  static const char *names[LT_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                        "lm_head"};
  return t >= 0 && t < LT_COUNT ? names[t] : "?";
}

void lora_target_dims(const Config &c, int t, int *in, int *out) {
  switch (t) {
    case LT_Q: *in = c.C, *out = c.Q(); break;
    case LT_K: case LT_V: *in = c.C, *out = c.KV(); break;
    case LT_O: *in = c.Q(), *out = c.C; break;
    case LT_GATE: case LT_UP: *in = c.C, *out = c.FF; break;
    case LT_DOWN: *in = c.FF, *out = c.C; break;
    default: *in = c.C, *out = c.V; break;
  }
}

unsigned lora_targets_from_flags(int attn, int mlp, int unembed) {
  unsigned t = 0;
  if (attn) t |= 1u << LT_Q | 1u << LT_K | 1u << LT_V | 1u << LT_O;
  if (mlp) t |= 1u << LT_GATE | 1u << LT_UP | 1u << LT_DOWN;
  if (unembed) t |= 1u << LT_HEAD;
  return t;
}

static std::string peft_name(int layer, int t, bool is_B) {
  std::string ab = is_B ? ".lora_B.weight" : ".lora_A.weight";
  if (t == LT_HEAD) return "base_model.model.lm_head" + ab;
  const char *block = t <= LT_O ? "self_attn" : "mlp";
  return "base_model.model.model.layers." + std::to_string(layer) + "." + block + "." + lora_target_name(t) + ab;
}

static void point(LoraTensors *lt, float *base, const Adapter &a, int L) {
  lt->layer.assign(size_t(L), {});
  lt->head = {};
  for (const auto &e : a.entries) {
    LoraPair &p = e.target == LT_HEAD ? lt->head : lt->layer[size_t(e.layer)][size_t(e.target)];
    (e.is_B ? p.B : p.A) = base + e.offset;
  }
}

te_status adapter_alloc(Adapter *a, const Config &c, const std::string &id, int R, float alpha, unsigned targets,
                        bool trainable) {
  a->id = id, a->R = R, a->alpha = alpha, a->scale = alpha / float(R);
  a->targets = targets, a->trainable = trainable, a->step = 0;
  a->entries.clear();
  size_t off = 0;
  auto add = [&](int layer, int t) {
    int in, out;
    lora_target_dims(c, t, &in, &out);
    a->entries.push_back({peft_name(layer, t, false), layer, t, false, R, in, off});
    off = align16(off + size_t(R) * in);
    a->entries.push_back({peft_name(layer, t, true), layer, t, true, out, R, off});
    off = align16(off + size_t(out) * R);
  };
  for (int l = 0; l < c.L; l++)
    for (int t = 0; t < LT_LAYER_COUNT; t++)
      if (targets >> t & 1u) add(l, t);
  if (targets >> LT_HEAD & 1u) add(-1, LT_HEAD);
  a->n_params = off;
  TE_TRY(a->params.alloc(off, "LoRA parameters"));
  point(&a->p, a->params.data(), *a, c.L);
  if (trainable) {
    TE_TRY(a->grads.alloc(off, "LoRA gradients"));
    TE_TRY(a->m.alloc(off, "Adam first moments"));
    TE_TRY(a->v.alloc(off, "Adam second moments"));
    point(&a->g, a->grads.data(), *a, c.L);
  }
  return TE_OK;
}

void adapter_init_kaiming(Adapter *a, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const auto &e : a->entries) {
    if (e.is_B) continue;  // B stays zero, so a new adapter starts as the base model
    float bound = 1.f / std::sqrt(float(e.cols));
    std::uniform_real_distribution<float> ud(-bound, bound);
    float *p = a->params.data() + e.offset;
    for (size_t i = 0; i < size_t(e.rows) * e.cols; i++) p[i] = ud(rng);
  }
}

}  // namespace tuft
