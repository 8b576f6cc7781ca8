// linear.h — a frozen linear layer plus LoRA, PEFT semantics: y = x Wᵀ + b + scale · (x Aᵀ) Bᵀ.
// The base GEMM runs once over all N rows; LoRA runs as two thin GEMMs per group of consecutive
// rows that share one adapter. Row-major with explicit leading dimensions, so a layer can write
// into a column slice of a fused output (q, k, v inside one [N, QKV] row).
#pragma once

namespace tuft {

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

// y[N, out] = x[N, in] Wᵀ (+ bias[out])         W: [out, in]
void linear_forward(float *y, int ldy, const float *x, int ldx, const float *W, const float *bias, int N, int in,
                    int out);
// u[row, 0:R] = x Aᵀ (kept for backward), y += scale · u Bᵀ, for each group.  u: [N, ldu]
void lora_forward(float *y, int ldy, float *u, int ldu, const float *x, int ldx, const LoraGroup *groups,
                  int n_groups, int in, int out);
// dx[N, in] = dy W + beta · dx          (frozen W: no dW)
void linear_backward(float *dx, int lddx, const float *dy, int lddy, const float *W, int N, int in, int out,
                     float beta);
// Per group: t = scale · dy B [n, R];  dx += t A;  dA += tᵀ x;  dB += scale · dyᵀ u.  t: scratch [N, ldu]
void lora_backward(float *dx, int lddx, float *t, const float *dy, int lddy, const float *x, int ldx,
                   const float *u, int ldu, const LoraGroup *groups, int n_groups, int in, int out);

}  // namespace tuft
