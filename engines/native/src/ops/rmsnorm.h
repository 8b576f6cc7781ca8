// rmsnorm.h — RMSNorm over vectors of D floats: G vectors per row (G = 1 for the residual norms,
// G = heads for Qwen3's per-head q/k norm), rows ld floats apart. Weights are frozen (no dw).
#pragma once
#include "../common/status.h"

namespace tuft {

struct Backend;

// out[n, g*D + i] = x[n, g*D + i] · rstd[n*G + g] · w[i],  rstd = 1 / sqrt(mean(x²) + eps)
using RmsnormForward = te_status(Backend &be, float *out, int ldo, float *rstd, const float *x, int ldx,
                                 const float *w, int N, int G, int D, float eps);
// dx[n, g*D + i] += ∂/∂x of Σ dout · out   (accumulates)
using RmsnormBackward = te_status(Backend &be, float *dx, int lddx, const float *dout, int lddo, const float *x,
                                  int ldx, const float *w, const float *rstd, int N, int G, int D);

}  // namespace tuft
