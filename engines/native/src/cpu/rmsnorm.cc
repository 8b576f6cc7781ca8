// rmsnorm.cc — RMSNorm forward/backward; sums in double so long rows keep fp32-level accuracy.
#include <cmath>

#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

te_status cpu::rmsnorm_forward(Backend &, float *out, int ldo, float *rstd, const float *x, int ldx, const float *w,
                               int N, int G, int D, float eps) {
  parallel_for(size_t(N), 8, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++)
      for (int g = 0; g < G; g++) {
        const float *xv = x + n * ldx + size_t(g) * D;
        float *o = out + n * ldo + size_t(g) * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += double(xv[i]) * xv[i];
        float r = float(1.0 / std::sqrt(ss / D + eps));
        rstd[n * G + g] = r;
        for (int i = 0; i < D; i++) o[i] = xv[i] * r * w[i];
      }
  });
  return TE_OK;
}

te_status cpu::rmsnorm_backward(Backend &, float *dx, int lddx, const float *dout, int lddo, const float *x, int ldx,
                                const float *w, const float *rstd, int N, int G, int D) {
  // y_i = w_i x_i r,  r = (mean x² + eps)^(-1/2):  dx_i = r w_i dy_i − r³/D · x_i · Σ_j w_j dy_j x_j
  parallel_for(size_t(N), 8, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++)
      for (int g = 0; g < G; g++) {
        const float *xv = x + n * ldx + size_t(g) * D, *dy = dout + n * lddo + size_t(g) * D;
        float *d = dx + n * lddx + size_t(g) * D;
        float r = rstd[n * G + g];
        double dot = 0;
        for (int i = 0; i < D; i++) dot += double(w[i]) * dy[i] * xv[i];
        float c = float(dot * r * r * r / D);
        for (int i = 0; i < D; i++) d[i] += r * w[i] * dy[i] - c * xv[i];
      }
  });
  return TE_OK;
}

}  // namespace tuft
