// model.cc — forward and backward orchestrators. Each reads like the model diagram; backward runs the
// same op list in exact reverse order. Base GEMMs cover all rows at once; LoRA is applied per group.
#include "model.h"

#include <algorithm>
#include <cstring>

#include "../common/pool.h"
#include "../cpu/gemm.h"
#include "../ops/embedding.h"
#include "../ops/rmsnorm.h"
#include "../ops/swiglu.h"

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

static void lora_fwd(float *y, int ldy, float *u, const float *x, int ldx, const Model &m, const Rows &rows, int l,
                     int t) {
  int in, out;
  lora_target_dims(m.cfg, t, &in, &out);
  auto gs = lora_groups(rows, l, t, 0, rows.N, false);
  lora_forward(y, ldy, u, rows.RM, x, ldx, gs.data(), int(gs.size()), in, out);
}

void layer_forward_qkv(const Model &m, int l, LayerActs &a, const Rows &rows) {
  const Config &c = m.cfg;
  const LayerWeights &w = m.layers[size_t(l)];
  const int N = rows.N, Q = c.Q(), KV = c.KV(), QKV = c.QKV();
  rmsnorm_forward(a.ln1, c.C, a.rstd1, a.x, c.C, w.ln1, N, 1, c.C, c.eps);
  linear_forward(a.qkv, QKV, a.ln1, c.C, w.wqkv, w.bqkv, N, c.C, QKV);
  lora_fwd(a.qkv, QKV, a.u[LT_Q], a.ln1, c.C, m, rows, l, LT_Q);
  lora_fwd(a.qkv + Q, QKV, a.u[LT_K], a.ln1, c.C, m, rows, l, LT_K);
  lora_fwd(a.qkv + Q + KV, QKV, a.u[LT_V], a.ln1, c.C, m, rows, l, LT_V);
  if (c.qk_norm) {
    rmsnorm_forward(a.q, Q, a.rstd_qk, a.qkv, QKV, w.q_norm, N, c.NH, c.HD, c.eps);
    rmsnorm_forward(a.k, KV, a.rstd_qk + size_t(N) * c.NH, a.qkv + Q, QKV, w.k_norm, N, c.NKV, c.HD, c.eps);
  } else {
    parallel_for(size_t(N), 64, [&](size_t n0, size_t n1) {
      for (size_t n = n0; n < n1; n++) {
        std::memcpy(a.q + n * Q, a.qkv + n * QKV, sizeof(float) * Q);
        std::memcpy(a.k + n * KV, a.qkv + n * QKV + Q, sizeof(float) * KV);
      }
    });
  }
  rope_forward(a.q, Q, rows.pos.data(), m.rope, N, c.NH, c.HD);
  rope_forward(a.k, KV, rows.pos.data(), m.rope, N, c.NKV, c.HD);
}

void layer_forward_out(const Model &m, int l, LayerActs &a, const Rows &rows, float *x_next) {
  const Config &c = m.cfg;
  const LayerWeights &w = m.layers[size_t(l)];
  const int N = rows.N, C = c.C, Q = c.Q(), FF = c.FF;
  linear_forward(a.x2, C, a.att, Q, w.wo, w.bo, N, Q, C);
  lora_fwd(a.x2, C, a.u[LT_O], a.att, Q, m, rows, l, LT_O);
  parallel_for(size_t(N) * C, 4096, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) a.x2[i] += a.x[i];  // residual
  });
  rmsnorm_forward(a.ln2, C, a.rstd2, a.x2, C, w.ln2, N, 1, C, c.eps);
  linear_forward(a.gu, 2 * FF, a.ln2, C, w.wgu, nullptr, N, C, 2 * FF);
  lora_fwd(a.gu, 2 * FF, a.u[LT_GATE], a.ln2, C, m, rows, l, LT_GATE);
  lora_fwd(a.gu + FF, 2 * FF, a.u[LT_UP], a.ln2, C, m, rows, l, LT_UP);
  swiglu_forward(a.h, a.gu, N, FF);
  linear_forward(x_next, C, a.h, FF, w.wd, nullptr, N, FF, C);
  lora_fwd(x_next, C, a.u[LT_DOWN], a.h, FF, m, rows, l, LT_DOWN);
  parallel_for(size_t(N) * C, 4096, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) x_next[i] += a.x2[i];  // residual
  });
}

void final_norm_forward(const Model &m, float *xf, float *rstdf, const float *xL, int N) {
  rmsnorm_forward(xf, m.cfg.C, rstdf, xL, m.cfg.C, m.ln_f, N, 1, m.cfg.C, m.cfg.eps);
}

void model_forward(const Model &m, Acts &acts, const Rows &rows) {
  const Config &c = m.cfg;
  embedding_forward(acts.layer[0].x, rows.tokens.data(), m.wte, rows.N, c.C);
  for (int l = 0; l < c.L; l++) {
    LayerActs &a = acts.layer[size_t(l)];
    float *x_next = l + 1 < c.L ? acts.layer[size_t(l) + 1].x : acts.xL;
    layer_forward_qkv(m, l, a, rows);
    attention_forward(a.att, c.Q(), a.lse, a.q, c.Q(), a.k, c.KV(), a.qkv + c.Q() + c.KV(), c.QKV(),
                      rows.spans.data(), int(rows.spans.size()), c.NH, c.NKV, c.HD);
    layer_forward_out(m, l, a, rows, x_next);
  }
  final_norm_forward(m, acts.xf, acts.rstdf, acts.xL, rows.N);
}

void head_logits(const Model &m, float *logits, float *uh, const float *xf, const Rows &rows, int r0, int n) {
  const Config &c = m.cfg;
  linear_forward(logits, c.V, xf + size_t(r0) * c.C, c.C, m.lm_head, nullptr, n, c.C, c.V);
  auto gs = lora_groups(rows, -1, LT_HEAD, r0, r0 + n, false);
  lora_forward(logits, c.V, uh, rows.RM, xf + size_t(r0) * c.C, c.C, gs.data(), int(gs.size()), c.C, c.V);
}

// ---- backward -----------------------------------------------------------------------------------------

void head_backward(const Model &m, float *dxf, float *t, const float *dlogits, const float *xf, const float *uh,
                   const Rows &rows, int r0, int n) {
  const Config &c = m.cfg;
  linear_backward(dxf + size_t(r0) * c.C, c.C, dlogits, c.V, m.lm_head, n, c.C, c.V, 0.f);
  auto gs = lora_groups(rows, -1, LT_HEAD, r0, r0 + n, true);
  lora_backward(dxf + size_t(r0) * c.C, c.C, t, dlogits, c.V, xf + size_t(r0) * c.C, c.C, uh, rows.RM, gs.data(),
                int(gs.size()), c.C, c.V);
}

namespace {
struct BackScratch {
  float *dres;  // [Ng, C]     gradient of the residual stream
  float *dln;   // [Ng, C]
  float *dgu;   // [Ng, 2FF]
  float *dh;    // [Ng, FF]
  float *datt;  // [Ng, Q]
  float *dq;    // [Ng, Q]
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

static void lora_bwd(float *dx, int lddx, float *t, const float *dy, int lddy, const float *x, int ldx,
                     const float *u, const Model &m, const Rows &rows, int Ng, int l, int target) {
  int in, out;
  lora_target_dims(m.cfg, target, &in, &out);
  auto gs = lora_groups(rows, l, target, 0, Ng, true);
  lora_backward(dx, lddx, t, dy, lddy, x, ldx, u, rows.RM, gs.data(), int(gs.size()), in, out);
}

void model_backward(const Model &m, Acts &acts, const Rows &rows, int Ng, const float *dxf, float *scratch) {
  const Config &c = m.cfg;
  const int C = c.C, Q = c.Q(), KV = c.KV(), QKV = c.QKV(), FF = c.FF, RM = rows.RM;
  BackScratch s;
  Carver cv{scratch};
  carve_back(&s, cv, c, Ng, RM);
  // Spans of the gradient rows (a prefix of the row order).
  std::vector<Span> spans;
  for (const Span &sp : rows.spans)
    if (sp.row0 < Ng) spans.push_back(sp);

  std::memset(s.dres, 0, sizeof(float) * size_t(Ng) * C);
  rmsnorm_backward(s.dres, C, dxf, C, acts.xL, C, m.ln_f, acts.rstdf, Ng, 1, C);
  for (int l = c.L - 1; l >= 0; l--) {
    const LayerWeights &w = m.layers[size_t(l)];
    LayerActs &a = acts.layer[size_t(l)];
    // x_next = x2 + down(swiglu(gate_up(ln2(x2))))
    linear_backward(s.dh, FF, s.dres, C, w.wd, Ng, FF, C, 0.f);
    lora_bwd(s.dh, FF, s.t, s.dres, C, a.h, FF, a.u[LT_DOWN], m, rows, Ng, l, LT_DOWN);
    swiglu_backward(s.dgu, s.dh, a.gu, Ng, FF);
    linear_backward(s.dln, C, s.dgu, 2 * FF, w.wgu, Ng, C, 2 * FF, 0.f);
    lora_bwd(s.dln, C, s.t, s.dgu + FF, 2 * FF, a.ln2, C, a.u[LT_UP], m, rows, Ng, l, LT_UP);
    lora_bwd(s.dln, C, s.t, s.dgu, 2 * FF, a.ln2, C, a.u[LT_GATE], m, rows, Ng, l, LT_GATE);
    rmsnorm_backward(s.dres, C, s.dln, C, a.x2, C, w.ln2, a.rstd2, Ng, 1, C);  // dres now d x2
    // x2 = x + o(attention(rope(norm(qkv(ln1(x))))))
    linear_backward(s.datt, Q, s.dres, C, w.wo, Ng, Q, C, 0.f);
    lora_bwd(s.datt, Q, s.t, s.dres, C, a.att, Q, a.u[LT_O], m, rows, Ng, l, LT_O);
    attention_backward(s.dq, Q, s.dk, KV, s.dqkv + Q + KV, QKV, s.attn, s.datt, Q, a.att, Q, a.lse, a.q, Q, a.k, KV,
                       a.qkv + Q + KV, QKV, spans.data(), int(spans.size()), c.NH, c.NKV, c.HD, Ng);
    rope_backward(s.dq, Q, rows.pos.data(), m.rope, Ng, c.NH, c.HD);
    rope_backward(s.dk, KV, rows.pos.data(), m.rope, Ng, c.NKV, c.HD);
    parallel_for(size_t(Ng), 64, [&](size_t n0, size_t n1) {
      for (size_t n = n0; n < n1; n++) {
        if (c.qk_norm) {
          std::memset(s.dqkv + n * QKV, 0, sizeof(float) * (Q + KV));
        } else {
          std::memcpy(s.dqkv + n * QKV, s.dq + n * Q, sizeof(float) * Q);
          std::memcpy(s.dqkv + n * QKV + Q, s.dk + n * KV, sizeof(float) * KV);
        }
      }
    });
    if (c.qk_norm) {
      rmsnorm_backward(s.dqkv, QKV, s.dq, Q, a.qkv, QKV, w.q_norm, a.rstd_qk, Ng, c.NH, c.HD);
      rmsnorm_backward(s.dqkv + Q, QKV, s.dk, KV, a.qkv + Q, QKV, w.k_norm, a.rstd_qk + size_t(rows.N) * c.NH, Ng,
                       c.NKV, c.HD);
    }
    linear_backward(s.dln, C, s.dqkv, QKV, w.wqkv, Ng, C, QKV, 0.f);
    lora_bwd(s.dln, C, s.t, s.dqkv + Q + KV, QKV, a.ln1, C, a.u[LT_V], m, rows, Ng, l, LT_V);
    lora_bwd(s.dln, C, s.t, s.dqkv + Q, QKV, a.ln1, C, a.u[LT_K], m, rows, Ng, l, LT_K);
    lora_bwd(s.dln, C, s.t, s.dqkv, QKV, a.ln1, C, a.u[LT_Q], m, rows, Ng, l, LT_Q);
    rmsnorm_backward(s.dres, C, s.dln, C, a.x, C, w.ln1, a.rstd1, Ng, 1, C);  // dres now d x
  }
}

}  // namespace tuft
