// swiglu.cc — SiLU-gated linear unit forward/backward, 16 lanes at a time (the vector exp of vexp.h:
// the C library's scalar exp made this a few percent of a whole training step).
#include <algorithm>
#include <cstring>

#include "../common/pool.h"
#include "../common/vexp.h"
#include "cpu.h"

namespace tuft {

namespace {

// The w ≤ 16 floats at p, zero beyond; and their store back.
inline v16 load_n(const float *p, int w) {
  v16 v = {};
  if (w == 16) std::memcpy(&v, p, sizeof v);  // a constant size: one vector load
  else std::memcpy(&v, p, sizeof(float) * size_t(w));
  return v;
}
inline void store_n(float *p, v16 v, int w) {
  if (w == 16) std::memcpy(p, &v, sizeof v);
  else std::memcpy(p, &v, sizeof(float) * size_t(w));
}

inline v16 sigmoid(v16 g) { return 1.f / (1.f + vexp(-g)); }

}  // namespace

te_status cpu::swiglu_forward(Backend &, float *h, const float *gu, int N, int FF) {
  parallel_for(size_t(N), 4, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      const float *g = gu + n * 2 * FF, *u = g + FF;
      float *o = h + n * FF;
      for (int i = 0; i < FF; i += 16) {
        const int w = std::min(16, FF - i);
        const v16 gv = load_n(g + i, w);
        store_n(o + i, gv * sigmoid(gv) * load_n(u + i, w), w);
      }
    }
  });
  return TE_OK;
}

te_status cpu::swiglu_backward(Backend &, float *dgu, const float *dh, const float *gu, int N, int FF) {
  parallel_for(size_t(N), 4, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      const float *g = gu + n * 2 * FF, *u = g + FF, *d = dh + n * FF;
      float *dg = dgu + n * 2 * FF, *du = dg + FF;
      for (int i = 0; i < FF; i += 16) {
        const int w = std::min(16, FF - i);
        const v16 gv = load_n(g + i, w), uv = load_n(u + i, w), dv = load_n(d + i, w), s = sigmoid(gv);
        store_n(du + i, dv * gv * s, w);
        store_n(dg + i, dv * uv * s * (1.f + gv * (1.f - s)), w);
      }
    }
  });
  return TE_OK;
}

}  // namespace tuft
