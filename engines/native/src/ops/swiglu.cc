// swiglu.cc — SiLU-gated linear unit forward/backward.
#include "swiglu.h"

#include <cmath>

#include "../common/pool.h"

namespace tuft {

void swiglu_forward(float *h, const float *gu, int N, int FF) {
  parallel_for(size_t(N), 4, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      const float *g = gu + n * 2 * FF, *u = g + FF;
      float *o = h + n * FF;
      for (int i = 0; i < FF; i++) o[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
    }
  });
}

void swiglu_backward(float *dgu, const float *dh, const float *gu, int N, int FF) {
  parallel_for(size_t(N), 4, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      const float *g = gu + n * 2 * FF, *u = g + FF, *d = dh + n * FF;
      float *dg = dgu + n * 2 * FF, *du = dg + FF;
      for (int i = 0; i < FF; i++) {
        float s = 1.f / (1.f + std::exp(-g[i]));
        du[i] = d[i] * g[i] * s;
        dg[i] = d[i] * u[i] * s * (1.f + g[i] * (1.f - s));
      }
    }
  });
}

}  // namespace tuft
