// model.h — the decoder (Qwen3 / Qwen2 / Llama): weights, LoRA adapters, activations and the forward /
// backward orchestrators, which run every op through the engine's backend (backend/backend.h). This is
// the header the sampler (src/sample/) builds on.
//
// Reusable forward pieces, for a KV-cache decode:
//   be.op->embedding_forward                       token rows → residual stream x [N, C]
//   layer_forward_qkv(be, m, l, a, rows)           ln1, q/k/v projections (+LoRA), q/k norm, rope:
//                                                  a.q [N, Q], a.k [N, KV], v = a.qkv + Q + KV (ld QKV)
//   be.op->attention_forward                       causal over spans; a decoder runs kv_attention over
//                                                  the cache instead, into a.att [N, Q]
//   layer_forward_out(be, m, l, a, rows, x_next)   o-proj (+LoRA) + residual, ln2, gate/up (+LoRA),
//                                                  swiglu, down (+LoRA) + residual → x_next [N, C]
//   final_norm_forward + head_logits               final RMSNorm and logits for chosen rows [n, V]
// A decode step sets up Rows (spans, positions, adapter groups) for its new rows and a LayerActs from
// layer_acts_carve over scratch it owns; positions come from rows.pos, so cached prefixes work.
//
// Dimension vocabulary (declared once, used in every shape comment):
//   B items in one call   T tokens of one item   N rows (Σ T over items)   C hidden   L layers
//   NH query heads   NKV key/value heads   HD head dim   Q = NH·HD   KV = NKV·HD   QKV = Q + 2·KV
//   FF MLP intermediate   V vocab   R LoRA rank (RM: the largest rank in a call)   K targets per row
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../backend/backend.h"
#include "../common/buffer.h"
#include "config.h"
#include "rope_table.h"

namespace tuft {

// ---- base weights (frozen, fp32, shared by every adapter; host memory, see backend.h) -----------

struct LayerWeights {
  const float *ln1;     // [C]        input_layernorm
  const float *wqkv;    // [QKV, C]   q_proj, k_proj, v_proj stacked by rows
  const float *bqkv;    // [QKV]      biases (Qwen2), else nullptr
  const float *q_norm;  // [HD]       Qwen3, else nullptr
  const float *k_norm;  // [HD]
  const float *wo;      // [C, Q]     o_proj
  const float *bo;      // [C]        attention_bias models, else nullptr
  const float *ln2;     // [C]        post_attention_layernorm
  const float *wgu;     // [2FF, C]   gate_proj, up_proj stacked by rows
  const float *wd;      // [C, FF]    down_proj
};

struct Model {
  Config cfg;
  Buffer mem;                        // every base tensor, one allocation
  const float *wte = nullptr;        // [V, C]
  std::vector<LayerWeights> layers;  // [L]
  const float *ln_f = nullptr;       // [C]
  const float *lm_head = nullptr;    // [V, C] (== wte when tied)
  RopeTable rope;                    // positions 0..max_seq-1
  int max_seq = 0;
};

// Hugging Face directory: config.json + model.safetensors or a sharded index (bf16/fp16/fp32).
te_status model_load(Model *m, const std::string &dir, int max_seq);
// Random weights for a given config (benchmarks, tests): uniform, std 0.02, matrices; unit norms.
te_status model_init_random(Model *m, const Config &cfg, uint64_t seed, int max_seq);

// ---- LoRA adapters (host memory, see backend.h) ---------------------------------------------------

enum LoraTarget { LT_Q, LT_K, LT_V, LT_O, LT_GATE, LT_UP, LT_DOWN, LT_HEAD, LT_COUNT };
constexpr int LT_LAYER_COUNT = LT_HEAD;  // per-layer targets come first
const char *lora_target_name(int t);     // "q_proj" … "lm_head"
void lora_target_dims(const Config &c, int t, int *in, int *out);

struct LoraPair {
  float *A = nullptr;  // [R, in]
  float *B = nullptr;  // [out, R]
};
// Named pointers into one flat family buffer (params, grads, Adam m or v): identical layouts.
struct LoraTensors {
  std::vector<std::array<LoraPair, LT_LAYER_COUNT>> layer;  // [L]
  LoraPair head;
};
// One A or B tensor of the layout: PEFT name, shape [rows, cols], offset in the family buffer.
struct LoraEntry {
  std::string name;
  int layer, target;
  bool is_B;
  int rows, cols;
  size_t offset;
};

struct Adapter {
  std::string id;
  int R = 0;
  float alpha = 0, scale = 0;  // scale = alpha / R (PEFT)
  unsigned targets = 0;        // bit (1 << LoraTarget)
  bool trainable = false;      // false: imported / snapshot, inference only (no grads, no moments)
  int64_t step = 0;            // AdamW steps taken
  std::vector<LoraEntry> entries;
  size_t n_params = 0;
  Buffer params, grads, m, v;  // [n_params] each (grads, m, v only when trainable)
  LoraTensors p, g;            // pointers into params, grads
  bool has(int t) const { return targets >> t & 1u; }
};

// Lays out and allocates (zeroed) params (and grads/m/v when trainable).
te_status adapter_alloc(Adapter *a, const Config &c, const std::string &id, int R, float alpha, unsigned targets,
                        bool trainable);
// PEFT init: A ~ U(−1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5)), B = 0.
void adapter_init_kaiming(Adapter *a, uint64_t seed);
unsigned lora_targets_from_flags(int attn, int mlp, int unembed);

// ---- rows of one call ---------------------------------------------------------------------------

// Consecutive rows that apply the same adapter (nullptr: base model only).
struct RowGroup {
  int row0, n;
  const Adapter *ad;
  bool grads;  // accumulate into ad's gradients
};

struct Rows {
  int N = 0;
  int RM = 1;                    // stride of the LoRA intermediates (largest rank, at least 1)
  std::vector<Span> spans;       // one per item, in row order
  std::vector<int32_t> tokens;   // [N]
  std::vector<int32_t> pos;      // [N] position of each row within its item
  std::vector<RowGroup> groups;  // cover [0, N) in order
};

// LoRA groups of one target for rows [r0, r1) (grads: fill dA/dB from trainable groups).
std::vector<LoraGroup> lora_groups(const Rows &rows, int layer, int target, int r0, int r1, bool grads);

// ---- activations (backend memory) ----------------------------------------------------------------

struct LayerActs {
  float *x;                 // [N, C]      layer input (residual stream)
  float *ln1;               // [N, C]
  float *rstd1;             // [N]
  float *qkv;               // [N, QKV]    projections (+bias, +LoRA), before q/k norm and rope
  float *rstd_qk;           // [N, NH] then [N, NKV]: Qwen3 per-head norms of q, then k
  float *q;                 // [N, Q]      normed, rotated
  float *k;                 // [N, KV]
  float *lse;               // [N, NH]     attention log-sum-exp
  float *att;               // [N, Q]      attention output
  float *x2;                // [N, C]      residual after attention
  float *ln2;               // [N, C]
  float *rstd2;             // [N]
  float *gu;                // [N, 2FF]
  float *h;                 // [N, FF]
  float *u[LT_LAYER_COUNT]; // [N, RM]     LoRA A·x per target
};

struct Acts {
  std::vector<LayerActs> layer;  // [L]
  float *xL;                     // [N, C] final residual
  float *xf;                     // [N, C] after the final norm
  float *rstdf;                  // [N]
};

size_t layer_acts_floats(const Config &c, int N, int RM);
void layer_acts_carve(LayerActs *a, float *mem, const Config &c, int N, int RM);
size_t acts_floats(const Config &c, int N, int RM);
void acts_carve(Acts *a, float *mem, const Config &c, int N, int RM);

// ---- forward --------------------------------------------------------------------------------------

te_status layer_forward_qkv(Backend &be, const Model &m, int l, LayerActs &a, const Rows &rows);
te_status layer_forward_out(Backend &be, const Model &m, int l, LayerActs &a, const Rows &rows, float *x_next);
te_status final_norm_forward(Backend &be, const Model &m, float *xf, float *rstdf, const float *xL, int N);
// Embedding → L layers → final norm, over all rows: acts.xf ready for the head.
te_status model_forward(Backend &be, const Model &m, Acts &acts, const Rows &rows);
// logits[n, V] = xf[r0:r0+n] lm_headᵀ (+ LoRA lm_head of each row's adapter). uh: [n, RM] scratch.
te_status head_logits(Backend &be, const Model &m, float *logits, float *uh, const float *xf, const Rows &rows, int r0,
                      int n);

// ---- backward ------------------------------------------------------------------------------------

// Scratch for the backward of the first Ng rows.
size_t backward_floats(const Config &c, int Ng, int RM);
// dxf [Ng, C]: gradient at the final norm output. Accumulates (+=) LoRA gradients of the rows'
// adapters; nothing else is written outside scratch.
te_status model_backward(Backend &be, const Model &m, Acts &acts, const Rows &rows, int Ng, const float *dxf,
                         float *scratch);
// dlogits [n, V] → dxf rows (written) and the lm_head LoRA gradients (+=). t: [n, RM] scratch.
te_status head_backward(Backend &be, const Model &m, float *dxf, float *t, const float *dlogits, const float *xf,
                        const float *uh, const Rows &rows, int r0, int n);

// ---- the backend ----------------------------------------------------------------------------------

// Every op the model runs, at its shapes (rows: any; LoRA up to max_rank), for the backend's supports().
std::vector<OpNeed> model_op_needs(const Config &c, int max_rank);

}  // namespace tuft
