// linear.cc — linear + LoRA forward/backward on top of sgemm.
#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

te_status cpu::linear_forward(Backend &be, float *y, int ldy, const float *x, int ldx, const float *W,
                              const float *bias, int N, int in, int out) {
  sgemm(gemm_of(be), false, true, N, out, in, 1.f, x, ldx, W, in, 0.f, y, ldy);
  if (!bias) return TE_OK;
  parallel_for(size_t(N), 64, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++)
      for (int o = 0; o < out; o++) y[n * ldy + o] += bias[o];
  });
  return TE_OK;
}

// Several adapters' groups of a few rows each (a decode step, short training data): one group per
// task, since each group's products are too small to split. Groups write disjoint rows of y and u.
static bool groups_in_parallel(const LoraGroup *groups, int n_groups) {
  if (n_groups < 2 || current_threads() <= 1) return false;
  for (int g = 0; g < n_groups; g++)
    if (groups[g].n > 64) return false;
  return true;
}

te_status cpu::lora_forward(Backend &be, float *y, int ldy, float *u, int ldu, const float *x, int ldx,
                            const LoraGroup *groups, int n_groups, int in, int out) {
  const GemmImpl gi = gemm_of(be);
  auto one = [&](int g) {
    const LoraGroup &G = groups[g];
    if (!G.A || G.n == 0) return;
    float *ug = u + size_t(G.row0) * ldu;
    sgemm(gi, false, true, G.n, G.R, in, 1.f, x + size_t(G.row0) * ldx, ldx, G.A, in, 0.f, ug, ldu);
    sgemm(gi, false, true, G.n, out, G.R, G.scale, ug, ldu, G.B, G.R, 1.f, y + size_t(G.row0) * ldy, ldy);
  };
  if (groups_in_parallel(groups, n_groups))
    parallel_for(size_t(n_groups), 1, [&](size_t g0, size_t g1) {
      for (size_t g = g0; g < g1; g++) one(int(g));
    });
  else
    for (int g = 0; g < n_groups; g++) one(g);
  return TE_OK;
}

te_status cpu::linear_backward(Backend &be, float *dx, int lddx, const float *dy, int lddy, const float *W, int N,
                               int in, int out, float beta) {
  sgemm(gemm_of(be), false, false, N, in, out, 1.f, dy, lddy, W, in, beta, dx, lddx);
  return TE_OK;
}

te_status cpu::lora_backward(Backend &be, float *dx, int lddx, float *t, const float *dy, int lddy, const float *x,
                             int ldx, const float *u, int ldu, const LoraGroup *groups, int n_groups, int in,
                             int out) {
  const GemmImpl gi = gemm_of(be);
  auto one = [&](int g) {
    const LoraGroup &G = groups[g];
    if (!G.A || G.n == 0) return;
    const float *dyg = dy + size_t(G.row0) * lddy, *xg = x + size_t(G.row0) * ldx, *ug = u + size_t(G.row0) * ldu;
    float *tg = t + size_t(G.row0) * ldu;
    sgemm(gi, false, false, G.n, G.R, out, G.scale, dyg, lddy, G.B, G.R, 0.f, tg, ldu);          // t = s·dy B
    if (G.dB) sgemm(gi, true, false, out, G.R, G.n, G.scale, dyg, lddy, ug, ldu, 1.f, G.dB, G.R);  // dB += s·dyᵀ u
    if (G.dA) sgemm(gi, true, false, G.R, in, G.n, 1.f, tg, ldu, xg, ldx, 1.f, G.dA, in);          // dA += tᵀ x
    if (dx) sgemm(gi, false, false, G.n, in, G.R, 1.f, tg, ldu, G.A, in, 1.f, dx + size_t(G.row0) * lddx, lddx);
  };
  // In parallel only when no two groups accumulate into the same gradients.
  bool par = groups_in_parallel(groups, n_groups);
  for (int g = 0; par && g < n_groups; g++)
    for (int h = 0; h < g; h++)
      if (groups[g].dA && (groups[g].dA == groups[h].dA || groups[g].dB == groups[h].dB)) par = false;
  if (par)
    parallel_for(size_t(n_groups), 1, [&](size_t g0, size_t g1) {
      for (size_t g = g0; g < g1; g++) one(int(g));
    });
  else
    for (int g = 0; g < n_groups; g++) one(g);
  return TE_OK;
}

}  // namespace tuft
