// adamw.cc — the gradient norm and the AdamW update, each one loop over the flat adapter family.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

te_status cpu::grad_sq_norm(Backend &, double *out, const float *g, size_t n) {
  // Fixed chunks (a few per thread), each summed in double, then summed in order.
  int nt = std::max(1, current_threads());
  std::vector<double> part(size_t(nt) * 4 + 1, 0.0);
  size_t chunk = (n + part.size() - 1) / part.size();
  parallel_for(part.size(), 1, [&](size_t c0, size_t c1) {
    for (size_t c = c0; c < c1; c++) {
      double s = 0;
      for (size_t i = c * chunk; i < std::min(n, (c + 1) * chunk); i++) s += double(g[i]) * g[i];
      part[c] = s;
    }
  });
  double s = 0;
  for (double p : part) s += p;
  *out = s;
  return TE_OK;
}

te_status cpu::adamw(Backend &, float *w, float *m, float *v, float *g, const AdamwStep &s, size_t n) {
  const float clip = s.clip, decay = s.decay, b1 = s.beta1, b2 = s.beta2, eps = s.eps, step_size = s.step_size,
              bc2_sqrt = s.bc2_sqrt;
  parallel_for(n, 4096, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) {
      float gi = g[i] * clip;
      w[i] *= decay;
      m[i] = b1 * m[i] + (1.f - b1) * gi;
      v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
      w[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
      g[i] = 0.f;
    }
  });
  return TE_OK;
}

}  // namespace tuft
