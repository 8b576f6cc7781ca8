// model.cc — forward and backward orchestrators. Each reads like the model diagram, one backend op per
// line; backward runs the same op list in exact reverse order. Base GEMMs cover all rows at once; LoRA is
// applied per group of rows that share an adapter.
#include "model.h"

#include <algorithm>

namespace tuft {

std::vector<LoraGroup> lora_groups(const Rows &rows, int layer, int target, int r0, int r1, bool grads) {
  std::vector<LoraGroup> out;
  for (const RowGroup &g : rows.groups) {
    if (!g.ad || !g.ad->has(target)) continue;
    int a = std::max(r0, g.row0), b = std::min(r1, g.row0 + g.n);
    if (a >= b) continue;
    const Adapter &ad = *g.ad;
    const LoraPair &p = target == LT_HEAD ? ad.p.head : ad.p.layer[size_t(layer)][size_t(target)];
    LoraGroup lg{a - r0, b - a, ad.R, ad.scale, p.A, p.B, nullptr, nullptr};
    if (grads && g.grads) {
      const LoraPair &d = target == LT_HEAD ? ad.g.head : ad.g.layer[size_t(layer)][size_t(target)];
      lg.dA = d.A, lg.dB = d.B;
    }
    out.push_back(lg);
  }
  return out;
}

// ---- activation layout ------------------------------------------------------------------------------

namespace {
struct Carver {
  float *p;
  size_t used = 0;
  float *take(size_t n) {
    float *r = p ? p + used : nullptr;
    used += align16(n);
    return r;
  }
};

void carve_layer(LayerActs *a, Carver &cv, const Config &c, int N, int RM) {
  size_t n = size_t(N);
  a->x = cv.take(n * c.C);
  a->ln1 = cv.take(n * c.C);
  a->rstd1 = cv.take(n);
  a->qkv = cv.take(n * c.QKV());
  a->rstd_qk = cv.take(n * (c.NH + c.NKV));
  a->q = cv.take(n * c.Q());
  a->k = cv.take(n * c.KV());
  a->lse = cv.take(n * c.NH);
  a->att = cv.take(n * c.Q());
  a->x2 = cv.take(n * c.C);
  a->ln2 = cv.take(n * c.C);
  a->rstd2 = cv.take(n);
  a->gu = cv.take(n * 2 * c.FF);
  a->h = cv.take(n * c.FF);
  for (auto &u : a->u) u = cv.take(n * RM);
}

void carve_acts(Acts *a, Carver &cv, const Config &c, int N, int RM) {
  a->layer.resize(size_t(c.L));
  for (auto &la : a->layer) carve_layer(&la, cv, c, N, RM);
  a->xL = cv.take(size_t(N) * c.C);
  a->xf = cv.take(size_t(N) * c.C);
  a->rstdf = cv.take(size_t(N));
}
}  // namespace

size_t layer_acts_floats(const Config &c, int N, int RM) {
  LayerActs a;
  Carver cv{nullptr};
  carve_layer(&a, cv, c, N, RM);
  return cv.used;
}
void layer_acts_carve(LayerActs *a, float *mem, const Config &c, int N, int RM) {
  Carver cv{mem};
  carve_layer(a, cv, c, N, RM);
}
size_t acts_floats(const Config &c, int N, int RM) {
  Acts a;
  Carver cv{nullptr};
  carve_acts(&a, cv, c, N, RM);
  return cv.used;
}
void acts_carve(Acts *a, float *mem, const Config &c, int N, int RM) {
  Carver cv{mem};
  carve_acts(a, cv, c, N, RM);
}

// ---- forward ------------------------------------------------------------------------------------------

static te_status lora_fwd(Backend &be, float *y, int ldy, float *u, const float *x, int ldx, const Model &m,
                          const Rows &rows, int l, int t) {
  int in, out;
  lora_target_dims(m.cfg, t, &in, &out);
  auto gs = lora_groups(rows, l, t, 0, rows.N, false);
  return be.op->lora_forward(be, y, ldy, u, rows.RM, x, ldx, gs.data(), int(gs.size()), in, out);
}

te_status layer_forward_qkv(Backend &be, const Model &m, int l, LayerActs &a, const Rows &rows) {
  const Config &c = m.cfg;
  const LayerWeights &w = m.layers[size_t(l)];
  const int N = rows.N, Q = c.Q(), KV = c.KV(), QKV = c.QKV();
  const float *cos = m.rope.cos.data(), *sin = m.rope.sin.data();
  const BackendOps &op = *be.op;
  TE_TRY(op.rmsnorm_forward(be, a.ln1, c.C, a.rstd1, a.x, c.C, w.ln1, N, 1, c.C, c.eps));
  TE_TRY(op.linear_forward(be, a.qkv, QKV, a.ln1, c.C, w.wqkv, w.bqkv, N, c.C, QKV));
  TE_TRY(lora_fwd(be, a.qkv, QKV, a.u[LT_Q], a.ln1, c.C, m, rows, l, LT_Q));
  TE_TRY(lora_fwd(be, a.qkv + Q, QKV, a.u[LT_K], a.ln1, c.C, m, rows, l, LT_K));
  TE_TRY(lora_fwd(be, a.qkv + Q + KV, QKV, a.u[LT_V], a.ln1, c.C, m, rows, l, LT_V));
  if (c.qk_norm) {
    TE_TRY(op.rmsnorm_forward(be, a.q, Q, a.rstd_qk, a.qkv, QKV, w.q_norm, N, c.NH, c.HD, c.eps));
    TE_TRY(op.rmsnorm_forward(be, a.k, KV, a.rstd_qk + size_t(N) * c.NH, a.qkv + Q, QKV, w.k_norm, N, c.NKV, c.HD,
                              c.eps));
  } else {
    TE_TRY(op.copy_rows(be, a.q, Q, a.qkv, QKV, N, Q));
    TE_TRY(op.copy_rows(be, a.k, KV, a.qkv + Q, QKV, N, KV));
  }
  TE_TRY(op.rope_forward(be, a.q, Q, rows.pos.data(), cos, sin, N, c.NH, c.HD));
  return op.rope_forward(be, a.k, KV, rows.pos.data(), cos, sin, N, c.NKV, c.HD);
}

te_status layer_forward_out(Backend &be, const Model &m, int l, LayerActs &a, const Rows &rows, float *x_next) {
  const Config &c = m.cfg;
  const LayerWeights &w = m.layers[size_t(l)];
  const int N = rows.N, C = c.C, Q = c.Q(), FF = c.FF;
  const BackendOps &op = *be.op;
  TE_TRY(op.linear_forward(be, a.x2, C, a.att, Q, w.wo, w.bo, N, Q, C));
  TE_TRY(lora_fwd(be, a.x2, C, a.u[LT_O], a.att, Q, m, rows, l, LT_O));
  TE_TRY(op.add(be, a.x2, a.x, size_t(N) * C));  // residual
  TE_TRY(op.rmsnorm_forward(be, a.ln2, C, a.rstd2, a.x2, C, w.ln2, N, 1, C, c.eps));
  TE_TRY(op.linear_forward(be, a.gu, 2 * FF, a.ln2, C, w.wgu, nullptr, N, C, 2 * FF));
  TE_TRY(lora_fwd(be, a.gu, 2 * FF, a.u[LT_GATE], a.ln2, C, m, rows, l, LT_GATE));
  TE_TRY(lora_fwd(be, a.gu + FF, 2 * FF, a.u[LT_UP], a.ln2, C, m, rows, l, LT_UP));
  TE_TRY(op.swiglu_forward(be, a.h, a.gu, N, FF));
  TE_TRY(op.linear_forward(be, x_next, C, a.h, FF, w.wd, nullptr, N, FF, C));
  TE_TRY(lora_fwd(be, x_next, C, a.u[LT_DOWN], a.h, FF, m, rows, l, LT_DOWN));
  return op.add(be, x_next, a.x2, size_t(N) * C);  // residual
}

te_status final_norm_forward(Backend &be, const Model &m, float *xf, float *rstdf, const float *xL, int N) {
  return be.op->rmsnorm_forward(be, xf, m.cfg.C, rstdf, xL, m.cfg.C, m.ln_f, N, 1, m.cfg.C, m.cfg.eps);
}

te_status model_forward(Backend &be, const Model &m, Acts &acts, const Rows &rows) {
  const Config &c = m.cfg;
  TE_TRY(be.op->embedding_forward(be, acts.layer[0].x, rows.tokens.data(), m.wte, rows.N, c.C));
  for (int l = 0; l < c.L; l++) {
    LayerActs &a = acts.layer[size_t(l)];
    float *x_next = l + 1 < c.L ? acts.layer[size_t(l) + 1].x : acts.xL;
    TE_TRY(layer_forward_qkv(be, m, l, a, rows));
    TE_TRY(be.op->attention_forward(be, a.att, c.Q(), a.lse, a.q, c.Q(), a.k, c.KV(), a.qkv + c.Q() + c.KV(), c.QKV(),
                                    rows.spans.data(), int(rows.spans.size()), c.NH, c.NKV, c.HD));
    TE_TRY(layer_forward_out(be, m, l, a, rows, x_next));
  }
  return final_norm_forward(be, m, acts.xf, acts.rstdf, acts.xL, rows.N);
}

te_status head_logits(Backend &be, const Model &m, float *logits, float *uh, const float *xf, const Rows &rows, int r0,
                      int n) {
  const Config &c = m.cfg;
  TE_TRY(be.op->linear_forward(be, logits, c.V, xf + size_t(r0) * c.C, c.C, m.lm_head, nullptr, n, c.C, c.V));
  auto gs = lora_groups(rows, -1, LT_HEAD, r0, r0 + n, false);
  return be.op->lora_forward(be, logits, c.V, uh, rows.RM, xf + size_t(r0) * c.C, c.C, gs.data(), int(gs.size()), c.C,
                             c.V);
}

// ---- backward -----------------------------------------------------------------------------------------

te_status head_backward(Backend &be, const Model &m, float *dxf, float *t, const float *dlogits, const float *xf,
                        const float *uh, const Rows &rows, int r0, int n) {
  const Config &c = m.cfg;
  TE_TRY(be.op->linear_backward(be, dxf + size_t(r0) * c.C, c.C, dlogits, c.V, m.lm_head, n, c.C, c.V, 0.f));
  auto gs = lora_groups(rows, -1, LT_HEAD, r0, r0 + n, true);
  return be.op->lora_backward(be, dxf + size_t(r0) * c.C, c.C, t, dlogits, c.V, xf + size_t(r0) * c.C, c.C, uh,
                              rows.RM, gs.data(), int(gs.size()), c.C, c.V);
}

namespace {
struct BackScratch {
  float *dres;  // [Ng, C]     gradient of the residual stream
  float *dln;   // [Ng, C]
  float *dgu;   // [Ng, 2FF]
  float *dh;    // [Ng, FF]
  float *datt;  // [Ng, Q]
  float *dq;    // [Ng, Q]     Qwen3: before the q/k norms
  float *dk;    // [Ng, KV]
  float *dqkv;  // [Ng, QKV]
  float *attn;  // [2, Ng, Q]  attention's per-query-head dk, dv
  float *t;     // [Ng, RM]    LoRA dy·B
};
void carve_back(BackScratch *s, Carver &cv, const Config &c, int Ng, int RM) {
  size_t n = size_t(Ng);
  s->dres = cv.take(n * c.C);
  s->dln = cv.take(n * c.C);
  s->dgu = cv.take(n * 2 * c.FF);
  s->dh = cv.take(n * c.FF);
  s->datt = cv.take(n * c.Q());
  s->dq = cv.take(n * c.Q());
  s->dk = cv.take(n * c.KV());
  s->dqkv = cv.take(n * c.QKV());
  s->attn = cv.take(2 * n * c.Q());
  s->t = cv.take(n * RM);
}
}  // namespace

size_t backward_floats(const Config &c, int Ng, int RM) {
  BackScratch s;
  Carver cv{nullptr};
  carve_back(&s, cv, c, Ng, RM);
  return cv.used;
}

static te_status lora_bwd(Backend &be, float *dx, int lddx, float *t, const float *dy, int lddy, const float *x,
                          int ldx, const float *u, const Model &m, const Rows &rows, int Ng, int l, int target) {
  int in, out;
  lora_target_dims(m.cfg, target, &in, &out);
  auto gs = lora_groups(rows, l, target, 0, Ng, true);
  return be.op->lora_backward(be, dx, lddx, t, dy, lddy, x, ldx, u, rows.RM, gs.data(), int(gs.size()), in, out);
}

te_status model_backward(Backend &be, const Model &m, Acts &acts, const Rows &rows, int Ng, const float *dxf,
                         float *scratch) {
  const Config &c = m.cfg;
  const int C = c.C, Q = c.Q(), KV = c.KV(), QKV = c.QKV(), FF = c.FF, RM = rows.RM;
  const float *cos = m.rope.cos.data(), *sin = m.rope.sin.data();
  const BackendOps &op = *be.op;
  BackScratch s;
  Carver cv{scratch};
  carve_back(&s, cv, c, Ng, RM);
  // Spans of the gradient rows (a prefix of the row order).
  std::vector<Span> spans;
  for (const Span &sp : rows.spans)
    if (sp.row0 < Ng) spans.push_back(sp);
  // Without q/k norms, attention's dq and dk go straight into their columns of dqkv; with them, into
  // dq and dk, whose norm backward accumulates into dqkv (zeroed first).
  float *dq = c.qk_norm ? s.dq : s.dqkv, *dk = c.qk_norm ? s.dk : s.dqkv + Q;
  const int lddq = c.qk_norm ? Q : QKV, lddk = c.qk_norm ? KV : QKV;

  TE_TRY(op.zero(be, s.dres, sizeof(float) * size_t(Ng) * C));
  TE_TRY(op.rmsnorm_backward(be, s.dres, C, dxf, C, acts.xL, C, m.ln_f, acts.rstdf, Ng, 1, C));
  for (int l = c.L - 1; l >= 0; l--) {
    const LayerWeights &w = m.layers[size_t(l)];
    LayerActs &a = acts.layer[size_t(l)];
    // x_next = x2 + down(swiglu(gate_up(ln2(x2))))
    TE_TRY(op.linear_backward(be, s.dh, FF, s.dres, C, w.wd, Ng, FF, C, 0.f));
    TE_TRY(lora_bwd(be, s.dh, FF, s.t, s.dres, C, a.h, FF, a.u[LT_DOWN], m, rows, Ng, l, LT_DOWN));
    TE_TRY(op.swiglu_backward(be, s.dgu, s.dh, a.gu, Ng, FF));
    TE_TRY(op.linear_backward(be, s.dln, C, s.dgu, 2 * FF, w.wgu, Ng, C, 2 * FF, 0.f));
    TE_TRY(lora_bwd(be, s.dln, C, s.t, s.dgu + FF, 2 * FF, a.ln2, C, a.u[LT_UP], m, rows, Ng, l, LT_UP));
    TE_TRY(lora_bwd(be, s.dln, C, s.t, s.dgu, 2 * FF, a.ln2, C, a.u[LT_GATE], m, rows, Ng, l, LT_GATE));
    TE_TRY(op.rmsnorm_backward(be, s.dres, C, s.dln, C, a.x2, C, w.ln2, a.rstd2, Ng, 1, C));  // dres now d x2
    // x2 = x + o(attention(rope(norm(qkv(ln1(x))))))
    TE_TRY(op.linear_backward(be, s.datt, Q, s.dres, C, w.wo, Ng, Q, C, 0.f));
    TE_TRY(lora_bwd(be, s.datt, Q, s.t, s.dres, C, a.att, Q, a.u[LT_O], m, rows, Ng, l, LT_O));
    if (c.qk_norm) TE_TRY(op.zero(be, s.dqkv, sizeof(float) * size_t(Ng) * QKV));
    TE_TRY(op.attention_backward(be, dq, lddq, dk, lddk, s.dqkv + Q + KV, QKV, s.attn, s.datt, Q, a.att, Q, a.lse,
                                 a.q, Q, a.k, KV, a.qkv + Q + KV, QKV, spans.data(), int(spans.size()), c.NH, c.NKV,
                                 c.HD, Ng));
    TE_TRY(op.rope_backward(be, dq, lddq, rows.pos.data(), cos, sin, Ng, c.NH, c.HD));
    TE_TRY(op.rope_backward(be, dk, lddk, rows.pos.data(), cos, sin, Ng, c.NKV, c.HD));
    if (c.qk_norm) {
      TE_TRY(op.rmsnorm_backward(be, s.dqkv, QKV, s.dq, Q, a.qkv, QKV, w.q_norm, a.rstd_qk, Ng, c.NH, c.HD));
      TE_TRY(op.rmsnorm_backward(be, s.dqkv + Q, QKV, s.dk, KV, a.qkv + Q, QKV, w.k_norm,
                                 a.rstd_qk + size_t(rows.N) * c.NH, Ng, c.NKV, c.HD));
    }
    TE_TRY(op.linear_backward(be, s.dln, C, s.dqkv, QKV, w.wqkv, Ng, C, QKV, 0.f));
    TE_TRY(lora_bwd(be, s.dln, C, s.t, s.dqkv + Q + KV, QKV, a.ln1, C, a.u[LT_V], m, rows, Ng, l, LT_V));
    TE_TRY(lora_bwd(be, s.dln, C, s.t, s.dqkv + Q, QKV, a.ln1, C, a.u[LT_K], m, rows, Ng, l, LT_K));
    TE_TRY(lora_bwd(be, s.dln, C, s.t, s.dqkv, QKV, a.ln1, C, a.u[LT_Q], m, rows, Ng, l, LT_Q));
    TE_TRY(op.rmsnorm_backward(be, s.dres, C, s.dln, C, a.x, C, w.ln1, a.rstd1, Ng, 1, C));  // dres now d x
  }
  return TE_OK;
}

// ---- the backend ----------------------------------------------------------------------------------------

std::vector<OpNeed> model_op_needs(const Config &c, int max_rank) {
  OpShape any, attn, rows;
  attn.heads = c.NH, attn.kv_heads = c.NKV, attn.head_dim = c.HD;
  std::vector<OpNeed> needs;
  const int layer_targets[][2] = {{c.C, c.QKV()}, {c.Q(), c.C}, {c.C, 2 * c.FF}, {c.FF, c.C}, {c.C, c.V}};
  for (const auto &io : layer_targets) {
    OpShape s;
    s.in = io[0], s.out = io[1], s.rank = max_rank;
    for (Op o : {Op::LINEAR_FORWARD, Op::LINEAR_BACKWARD, Op::LORA_FORWARD, Op::LORA_BACKWARD}) needs.push_back({o, s});
  }
  for (Op o : {Op::ATTENTION_FORWARD, Op::ATTENTION_BACKWARD, Op::ROPE_FORWARD, Op::ROPE_BACKWARD, Op::KV_WRITE,
               Op::KV_COPY, Op::KV_ATTENTION})
    needs.push_back({o, attn});
  for (int D : {c.C, c.HD}) {
    rows.in = D;
    needs.push_back({Op::RMSNORM_FORWARD, rows});
    needs.push_back({Op::RMSNORM_BACKWARD, rows});
  }
  rows.in = c.FF;
  needs.push_back({Op::SWIGLU_FORWARD, rows});
  needs.push_back({Op::SWIGLU_BACKWARD, rows});
  rows.in = c.V;
  needs.push_back({Op::HEAD_LOSS, rows});
  for (Op o : {Op::EMBEDDING_FORWARD, Op::ADD, Op::COPY_ROWS, Op::GRAD_SQ_NORM, Op::ADAMW}) needs.push_back({o, any});
  return needs;
}

}  // namespace tuft
