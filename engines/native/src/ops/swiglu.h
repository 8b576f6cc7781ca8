// swiglu.h — the MLP gate: h = silu(gate) · up, reading gate and up from one fused [N, 2·FF] row.
#pragma once
#include "../common/status.h"

namespace tuft {

struct Backend;

// h[N, FF] = silu(gu[:, 0:FF]) · gu[:, FF:2FF]
using SwigluForward = te_status(Backend &be, float *h, const float *gu, int N, int FF);
// dgu[N, 2FF] = ∂/∂gu of Σ dh · h   (written)
using SwigluBackward = te_status(Backend &be, float *dgu, const float *dh, const float *gu, int N, int FF);

}  // namespace tuft
