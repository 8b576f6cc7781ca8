// rope.cc — rotary tables (computed in double, as the reference does) and the in-place rotation.
#include "rope.h"

#include <cmath>
#include <vector>

#include "../common/pool.h"
#include "../model/config.h"

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

static void rotate(float *x, int ld, const int32_t *pos, const RopeTable &t, int N, int H, int HD, float sign) {
  int half = HD / 2;
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      const float *cs = t.cos.data() + size_t(pos[n]) * half, *sn = t.sin.data() + size_t(pos[n]) * half;
      for (int h = 0; h < H; h++) {
        float *v = x + n * ld + size_t(h) * HD;
        for (int i = 0; i < half; i++) {
          float a = v[i], b = v[i + half], s = sign * sn[i];
          v[i] = a * cs[i] - b * s;
          v[i + half] = b * cs[i] + a * s;
        }
      }
    }
  });
}

void rope_forward(float *x, int ld, const int32_t *pos, const RopeTable &t, int N, int H, int HD) {
  rotate(x, ld, pos, t, N, H, HD, 1.f);
}
void rope_backward(float *dx, int ld, const int32_t *pos, const RopeTable &t, int N, int H, int HD) {
  rotate(dx, ld, pos, t, N, H, HD, -1.f);
}

}  // namespace tuft
