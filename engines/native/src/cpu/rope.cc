// rope.cc — the in-place rotation, forward and adjoint.
#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

static void rotate(float *x, int ld, const int32_t *pos, const float *cos, const float *sin, int N, int H, int HD,
                   float sign) {
  int half = HD / 2;
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      const float *cs = cos + size_t(pos[n]) * half, *sn = sin + size_t(pos[n]) * half;
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

te_status cpu::rope_forward(Backend &, float *x, int ld, const int32_t *pos, const float *cos, const float *sin, int N,
                            int H, int HD) {
  rotate(x, ld, pos, cos, sin, N, H, HD, 1.f);
  return TE_OK;
}
te_status cpu::rope_backward(Backend &, float *dx, int ld, const int32_t *pos, const float *cos, const float *sin,
                             int N, int H, int HD) {
  rotate(dx, ld, pos, cos, sin, N, H, HD, -1.f);
  return TE_OK;
}

}  // namespace tuft
