// adamw.h — the optimizer over an adapter's flat parameter family: the global gradient norm and one
// AdamW update (torch.optim.AdamW semantics). params, grads and both moments share one layout, so
// each is one loop over n floats.
#pragma once
#include <cstddef>

#include "../common/status.h"

namespace tuft {

struct Backend;

// The per-element recipe of one step; the scalars (bias corrections, clipping) come from the host.
struct AdamwStep {
  float clip;       // gradient scale (global-norm clipping), 1 = none
  float decay;      // 1 − lr · weight_decay (decoupled)
  float beta1, beta2, eps;
  float step_size;  // lr / (1 − beta1^step)
  float bc2_sqrt;   // sqrt(1 − beta2^step)
};

// *out (host) = Σ g[i]² over n floats, accumulated in double
using GradSqNorm = te_status(Backend &be, double *out, const float *g, size_t n);
// g' = g · clip;  w ← w · decay;  m ← β1 m + (1 − β1) g';  v ← β2 v + (1 − β2) g'²;
// w ← w − step_size · m / (sqrt(v) / bc2_sqrt + eps);  g ← 0
using Adamw = te_status(Backend &be, float *w, float *m, float *v, float *g, const AdamwStep &s, size_t n);

}  // namespace tuft
