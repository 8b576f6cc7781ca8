// swiglu.h — the MLP gate: h = silu(gate) · up, reading gate and up from one fused [N, 2·FF] row.
#pragma once

namespace tuft {

// h[N, FF] = silu(gu[:, 0:FF]) · gu[:, FF:2FF]
void swiglu_forward(float *h, const float *gu, int N, int FF);
// dgu[N, 2FF] = ∂/∂gu of Σ dh · h   (written)
void swiglu_backward(float *dgu, const float *dh, const float *gu, int N, int FF);

}  // namespace tuft
