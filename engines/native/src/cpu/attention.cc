// attention.cc — CPU attention in register-tiled blocks: forward with the per-row arithmetic of the
// sampler's attention over the KV cache (dot.h), so that sampling matches training; backward below.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/pool.h"
#include "cpu.h"
#include "dot.h"

namespace tuft {

// ---- forward ---------------------------------------------------------------------------------------------
// One task per (span, head, block of ROWS query rows): the keys up to the block's last row transposed
// into groups of 16 ([group][HD][16]), then RB rows at a time: their scores against every group
// (scores16), each row's softmax (softmax_row), and the output as register-tiled sums over the keys of
// (p_j / Σp) · v_j in key order, a row's later keys weighing exactly 0. Per row, the same arithmetic as
// the sampler's kv_attention (dot.h).
te_status cpu::attention_forward(Backend &, float *out, int ldo, float *lse, const float *q, int ldq, const float *k,
                                 int ldk, const float *v, int ldv, const Span *spans, int n_spans, int NH, int NKV,
                                 int HD) {
  constexpr int ROWS = 32, RB = 8;
  struct Task {
    int span, head, t0, t1;
  };
  std::vector<Task> tasks;
  for (int s = 0; s < n_spans; s++)
    for (int h = 0; h < NH; h++)
      for (int t0 = 0; t0 < spans[s].T; t0 += ROWS) tasks.push_back({s, h, t0, std::min(spans[s].T, t0 + ROWS)});
  const float scale = 1.f / std::sqrt(float(HD));
  const int group = NH / NKV, HD16 = HD / 16 * 16;
  parallel_for(tasks.size(), 1, [&](size_t a, size_t b) {
    thread_local std::vector<float> kt, p;
    for (size_t ti = a; ti < b; ti++) {
      const Task &tk = tasks[ti];
      const Span &sp = spans[tk.span];
      const int h = tk.head, kvh = h / group, groups = (tk.t1 + 15) / 16, W = groups * 16;
      const float *k0 = k + size_t(sp.row0) * ldk + size_t(kvh) * HD, *v0 = v + size_t(sp.row0) * ldv + size_t(kvh) * HD;
      kt.assign(size_t(groups) * HD * 16, 0.f);
      for (int j = 0; j < tk.t1; j++)
        for (int d = 0; d < HD; d++) kt[(size_t(j / 16) * HD + size_t(d)) * 16 + size_t(j % 16)] = k0[size_t(j) * ldk + d];
      p.resize(size_t(RB) * W);
      for (int r0 = tk.t0; r0 < tk.t1; r0 += RB) {
        const int nr = std::min(RB, tk.t1 - r0), last = r0 + nr - 1, keys = last + 1;
        const float *qr[RB];
        for (int r = 0; r < RB; r++) qr[r] = q + size_t(sp.row0 + r0 + std::min(r, nr - 1)) * ldq + size_t(h) * HD;
        for (int g = 0; g * 16 < keys; g++) {
          v16 s[RB];
          scores16<RB>(qr, &kt[size_t(g) * HD * 16], HD, scale, s);
          for (int r = 0; r < RB; r++) std::memcpy(&p[size_t(r) * W + size_t(g) * 16], &s[r], sizeof(v16));
        }
        for (int r = 0; r < nr; r++) {
          const int t = r0 + r;
          float *pr = &p[size_t(r) * W], mx;
          const double sum = softmax_row(pr, t + 1, &mx);
          const float inv = float(1.0 / sum);
          for (int j = 0; j <= t; j++) pr[j] *= inv;
          for (int j = t + 1; j < keys; j++) pr[j] = 0.f;
          lse[size_t(sp.row0 + t) * NH + h] = mx + float(std::log(sum));
        }
        for (int c = 0; c < HD16; c += 16) {
          v16 acc[RB] = {};
          for (int j = 0; j < keys; j++) {
            v16 x;
            std::memcpy(&x, v0 + size_t(j) * ldv + c, sizeof x);
            for (int r = 0; r < RB; r++) acc[r] += p[size_t(r) * W + size_t(j)] * x;
          }
          for (int r = 0; r < nr; r++)
            std::memcpy(out + size_t(sp.row0 + r0 + r) * ldo + size_t(h) * HD + c, &acc[r], sizeof(v16));
        }
        if (HD16 < HD)  // the columns past the last 16
          for (int r = 0; r < nr; r++) {
            float *o = out + size_t(sp.row0 + r0 + r) * ldo + size_t(h) * HD + HD16;
            std::memset(o, 0, sizeof(float) * size_t(HD - HD16));
            for (int j = 0; j <= r0 + r; j++) axpy(o, p[size_t(r) * W + size_t(j)], v0 + size_t(j) * ldv + HD16, HD - HD16);
          }
      }
    }
  });
  return TE_OK;
}

// ---- backward, in blocks ------------------------------------------------------------------------------
// One task per (span, query head), as FlashAttention-2 does it on a GPU but with the whole span's
// operands copied into the task's own zero-padded buffers (row stride HDp, a multiple of 16): for a
// chunk of QC query rows against a chunk of KC keys, P = exp(scale · q·k − lse) and dS = P ∘ (dO·v − D)
// · scale are formed 8 rows × 16 keys at a time (kᵀ and vᵀ pre-transposed, so each step is one vector
// load per 8 broadcast multiply-adds), then dV += Pᵀ·dO, dK += dSᵀ·q and dQ += dS·k are register-tiled
// products over the chunk. The old form (three dot products and three axpys per pair of rows) ran at
// a tenth of this.
namespace {

constexpr int QC = 64, KC = 256;  // query rows × keys per chunk: P and dS of a chunk stay in L1 / L2
constexpr int RB = 8;             // query rows per tile of the score products

inline v16 ld(const float *p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void st(float *p, v16 v) { std::memcpy(p, &v, sizeof v); }

struct BackBuffers {
  std::vector<float> q, k, dout, kt, vt, dq, dk, dv, p, ds, lse, D;
  void size(int Tr, int Tp, int HDp) {
    for (auto *b : {&q, &dout, &dq}) b->assign(size_t(Tr) * HDp, 0.f);
    for (auto *b : {&k, &dk, &dv}) b->assign(size_t(Tp) * HDp, 0.f);
    for (auto *b : {&kt, &vt}) b->assign(size_t(HDp) * Tp, 0.f);
    p.resize(size_t(QC) * KC), ds.resize(size_t(QC) * KC);
    lse.assign(size_t(Tr), 0.f), D.assign(size_t(Tr), 0.f);
  }
};

// Scores of RB rows (from i0) × 16 keys (from j0): P and dS into rows of p / ds (stride KC, column jc),
// zero where the key follows the row or the row is past T.
void score_tile(const BackBuffers &b, int i0, int j0, int ic, int jc, int T, int Tp, int HDp, float scale,
                float *p, float *ds) {
  v16 s[RB] = {}, dp[RB] = {};
  for (int d = 0; d < HDp; d++) {
    const v16 kt = ld(&b.kt[size_t(d) * Tp + j0]), vt = ld(&b.vt[size_t(d) * Tp + j0]);
    for (int r = 0; r < RB; r++) {
      s[r] += b.q[size_t(i0 + r) * HDp + d] * kt;
      dp[r] += b.dout[size_t(i0 + r) * HDp + d] * vt;
    }
  }
  v16i col;
  for (int l = 0; l < 16; l++) col[l] = j0 + l;
  for (int r = 0; r < RB; r++) {
    const int i = i0 + r;
    const v16 pr = vexp(s[r] * scale - b.lse[size_t(i)]);
    const v16i keep = i < T ? col <= (v16i{} + i) : v16i{};
    const v16 pm = keep ? pr : v16{};
    st(p + size_t(ic + r) * KC + jc, pm);
    st(ds + size_t(ic + r) * KC + jc, pm * (dp[r] - b.D[size_t(i)]) * scale);
  }
}

// acc[16 keys from j0] += Σ_i w[i][jc …] · x[i] over rows [r0, r1) of the chunk (from i0), for one
// 16-column slice c of x's rows (stride HDp): dV from P and dO, dK from dS and q.
void keys_tile(float *acc, const float *w, const float *x, int i0, int r0, int r1, int jc, int c, int HDp) {
  v16 a[16];
  for (int l = 0; l < 16; l++) a[l] = ld(acc + size_t(l) * HDp + c);
  for (int r = r0; r < r1; r++) {
    const v16 xv = ld(x + size_t(i0 + r) * HDp + c);
    const float *wr = w + size_t(r) * KC + jc;
    for (int l = 0; l < 16; l++) a[l] += wr[l] * xv;
  }
  for (int l = 0; l < 16; l++) st(acc + size_t(l) * HDp + c, a[l]);
}

// dq rows [i0, i0 + RB) += Σ_j ds[row][j] · k[j] over keys [k0, k1), one 16-column slice c.
void query_tile(float *dq, const float *ds, const float *k, int i0, int ic, int k0, int k1, int c, int HDp) {
  v16 a[RB];
  for (int r = 0; r < RB; r++) a[r] = ld(dq + size_t(i0 + r) * HDp + c);
  for (int j = k0; j < k1; j++) {
    const v16 kv = ld(k + size_t(j) * HDp + c);
    for (int r = 0; r < RB; r++) a[r] += ds[size_t(ic + r) * KC + (j - k0)] * kv;
  }
  for (int r = 0; r < RB; r++) st(dq + size_t(i0 + r) * HDp + c, a[r]);
}

}  // namespace

te_status cpu::attention_backward(Backend &, float *dq, int lddq, float *dk, int lddk, float *dv, int lddv,
                                  float *scratch, const float *dout, int lddo, const float *out, int ldo,
                                  const float *lse, const float *q, int ldq, const float *k, int ldk, const float *v,
                                  int ldv, const Span *spans, int n_spans, int NH, int NKV, int HD, int N) {
  // dk and dv of one kv head collect contributions from every query head of its group and every
  // query row; each (span, head) task owns its own slice of per-query-head buffers (no races), and
  // the group sum is taken afterwards.
  const int Q = NH * HD, group = NH / NKV, HDp = (HD + 15) / 16 * 16;
  float *dk_h = scratch, *dv_h = scratch + size_t(N) * Q;  // [N, NH*HD] each
  const float scale = 1.f / std::sqrt(float(HD));
  parallel_for(size_t(n_spans) * NH, 1, [&](size_t a, size_t b) {
    thread_local BackBuffers bb;
    for (size_t task = a; task < b; task++) {
      const Span &sp = spans[task / NH];
      const int h = int(task % NH), kvh = h / group, T = sp.T;
      const int Tr = (T + RB - 1) / RB * RB, Tp = (T + 15) / 16 * 16;
      bb.size(Tr, Tp, HDp);
      for (int t = 0; t < T; t++) {
        const size_t n = size_t(sp.row0 + t);
        const float *qn = q + n * ldq + size_t(h) * HD, *kn = k + n * ldk + size_t(kvh) * HD,
                    *vn = v + n * ldv + size_t(kvh) * HD, *don = dout + n * lddo + size_t(h) * HD;
        std::memcpy(&bb.q[size_t(t) * HDp], qn, sizeof(float) * HD);
        std::memcpy(&bb.k[size_t(t) * HDp], kn, sizeof(float) * HD);
        std::memcpy(&bb.dout[size_t(t) * HDp], don, sizeof(float) * HD);
        for (int d = 0; d < HD; d++) bb.kt[size_t(d) * Tp + t] = kn[d], bb.vt[size_t(d) * Tp + t] = vn[d];
        bb.lse[size_t(t)] = lse[n * NH + h];
        bb.D[size_t(t)] = dot(don, out + n * ldo + size_t(h) * HD, HD);
      }
      for (int i0 = 0; i0 < T; i0 += QC) {
        const int i1 = std::min(T, i0 + QC), rows = (i1 - i0 + RB - 1) / RB * RB;
        for (int k0 = 0; k0 < i1; k0 += KC) {
          const int k1 = std::min(i1, k0 + KC);  // keys up to the chunk's last row
          // Scores, tile by tile; tiles wholly after their rows' keys are skipped (never read below).
          for (int r = 0; r < rows; r += RB)
            for (int j0 = k0; j0 < std::min(k1, i0 + r + RB); j0 += 16)
              score_tile(bb, i0 + r, j0, r, j0 - k0, T, Tp, HDp, scale, bb.p.data(), bb.ds.data());
          for (int j0 = k0; j0 < k1; j0 += 16) {
            // Rows before the block's first key add nothing; a row's tiles end at its own diagonal block.
            const int r0 = std::max(0, (j0 - i0) / RB * RB);
            for (int c = 0; c < HDp; c += 16) {
              keys_tile(&bb.dv[size_t(j0) * HDp], bb.p.data(), bb.dout.data(), i0, r0, i1 - i0, j0 - k0, c, HDp);
              keys_tile(&bb.dk[size_t(j0) * HDp], bb.ds.data(), bb.q.data(), i0, r0, i1 - i0, j0 - k0, c, HDp);
            }
          }
          for (int r = 0; r < rows; r += RB) {
            const int kend = std::min(k1, (i0 + r + RB + 15) / 16 * 16);
            for (int c = 0; c < HDp; c += 16) query_tile(bb.dq.data(), bb.ds.data(), bb.k.data(), i0 + r, r, k0,
                                                         std::max(k0, kend), c, HDp);
          }
        }
      }
      for (int t = 0; t < T; t++) {
        const size_t n = size_t(sp.row0 + t);
        std::memcpy(dq + n * lddq + size_t(h) * HD, &bb.dq[size_t(t) * HDp], sizeof(float) * HD);
        std::memcpy(dk_h + n * Q + size_t(h) * HD, &bb.dk[size_t(t) * HDp], sizeof(float) * HD);
        std::memcpy(dv_h + n * Q + size_t(h) * HD, &bb.dv[size_t(t) * HDp], sizeof(float) * HD);
      }
    }
  });
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++)
      for (int kvh = 0; kvh < NKV; kvh++) {
        float *dkn = dk + n * lddk + size_t(kvh) * HD, *dvn = dv + n * lddv + size_t(kvh) * HD;
        std::memset(dkn, 0, sizeof(float) * HD);
        std::memset(dvn, 0, sizeof(float) * HD);
        for (int g = 0; g < group; g++) {
          int h = kvh * group + g;
          axpy(dkn, 1.f, dk_h + n * Q + size_t(h) * HD, HD);
          axpy(dvn, 1.f, dv_h + n * Q + size_t(h) * HD, HD);
        }
      }
  });
  return TE_OK;
}

}  // namespace tuft
