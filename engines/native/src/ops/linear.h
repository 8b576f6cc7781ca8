// linear.h — the GEMM, a frozen linear layer and LoRA on top of it (PEFT semantics:
// y = x Wᵀ + b + scale · (x Aᵀ) Bᵀ). The base product runs once over all N rows; LoRA runs per group
// of consecutive rows that share one adapter — a segmented multi-adapter product (Punica's SGMV), ranks
// may differ between groups. Row-major with explicit leading dimensions, so a layer can write into a
// column slice of a fused output (q, k, v inside one [N, QKV] row).
#pragma once
#include "../common/status.h"

namespace tuft {

struct Backend;

// One adapter's LoRA pair for one target, applied to rows [row0, row0 + n).
struct LoraGroup {
  int row0, n;
  int R;            // rank
  float scale;      // alpha / R
  const float *A;   // [R, in]
  const float *B;   // [out, R]
  float *dA;        // [R, in]   gradient (+=), nullptr when not training
  float *dB;        // [out, R]
};

// C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C, op(X) = X or Xᵀ. BLAS argument order (the one
// exception to outputs-first: every GEMM reader knows it); beta == 0 never reads C.
using Gemm = te_status(Backend &be, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc);
// y[N, out] = x[N, in] Wᵀ (+ bias[out])         W: [out, in]
using LinearForward = te_status(Backend &be, float *y, int ldy, const float *x, int ldx, const float *W,
                                const float *bias, int N, int in, int out);
// u[row, 0:R] = x Aᵀ (kept for backward), y += scale · u Bᵀ, for each group.  u: [N, ldu]
using LoraForward = te_status(Backend &be, float *y, int ldy, float *u, int ldu, const float *x, int ldx,
                              const LoraGroup *groups, int n_groups, int in, int out);
// dx[N, in] = dy W + beta · dx          (frozen W: no dW)
using LinearBackward = te_status(Backend &be, float *dx, int lddx, const float *dy, int lddy, const float *W, int N,
                                 int in, int out, float beta);
// Per group: t = scale · dy B [n, R];  dx += t A;  dA += tᵀ x;  dB += scale · dyᵀ u.  t: scratch [N, ldu].
// Groups may share an adapter (its gradients then accumulate over all of them).
using LoraBackward = te_status(Backend &be, float *dx, int lddx, float *t, const float *dy, int lddy, const float *x,
                               int ldx, const float *u, int ldu, const LoraGroup *groups, int n_groups, int in,
                               int out);

}  // namespace tuft
