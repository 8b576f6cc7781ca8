// rope_table.cc — the rotary cos/sin tables, computed in double as the reference does (default or
// llama3-scaled frequencies).
#include "rope_table.h"

#include <cmath>
#include <vector>

namespace tuft {

te_status rope_table_init(RopeTable *t, const Config &c, int P) {
  int half = c.HD / 2;
  t->P = P, t->half = half;
  TE_TRY(t->cos.alloc(size_t(P) * half, "rope cos table"));
  TE_TRY(t->sin.alloc(size_t(P) * half, "rope sin table"));
  std::vector<double> inv(half);
  for (int i = 0; i < half; i++) inv[i] = 1.0 / std::pow(c.rope_theta, double(2 * i) / c.HD);
  if (c.rope_factor > 0) {  // llama3: long wavelengths slowed by factor, a smooth band in between
    double low_wl = c.rope_orig_max_pos / c.rope_low_freq, high_wl = c.rope_orig_max_pos / c.rope_high_freq;
    for (int i = 0; i < half; i++) {
      double wl = 2 * M_PI / inv[i];
      if (wl > low_wl) inv[i] /= c.rope_factor;
      else if (wl >= high_wl) {
        double s = (c.rope_orig_max_pos / wl - c.rope_low_freq) / (c.rope_high_freq - c.rope_low_freq);
        inv[i] = (1 - s) * inv[i] / c.rope_factor + s * inv[i];
      }
    }
  }
  for (int p = 0; p < P; p++)
    for (int i = 0; i < half; i++) {
      double a = p * inv[i];
      t->cos.data()[size_t(p) * half + i] = float(std::cos(a));
      t->sin.data()[size_t(p) * half + i] = float(std::sin(a));
    }
  return TE_OK;
}

}  // namespace tuft
