// dot.h — the inner loops of the CPU attention, shared by training (attention.cc) and the sampler's
// attention over the KV cache (kv.cc), so that both compute every score, softmax weight and output in
// the same order and a sampled token's log-probability is the one training computes, bit for bit.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/vexp.h"

namespace tuft {

inline float dot(const float *a, const float *b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

inline void axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

// Scores of R query rows against 16 keys: lane j of s[r] = scale · Σ_d q[r][d] · kt[d][j], kt the keys
// transposed ([HD][16], zero lanes for missing keys). Each lane is one multiply-add chain over d in
// order whatever R, so training's tiles of rows and the sampler's single rows get the same bits.
template <int R>
inline void scores16(const float *const *q, const float *kt, int HD, float scale, v16 *s) {
  for (int r = 0; r < R; r++) s[r] = v16{};
  for (int d = 0; d < HD; d++) {
    v16 k;
    std::memcpy(&k, kt + size_t(d) * 16, sizeof k);
    for (int r = 0; r < R; r++) s[r] += q[r][d] * k;
  }
  for (int r = 0; r < R; r++) s[r] *= scale;
}

// p[0, n) = exp(p − max) in place, 16 lanes at a time (vexp.h); returns Σ p in double, in order, and
// the max in *mx (a max in any order is the same number).
inline double softmax_row(float *p, int n, float *mx) {
  v16 m16 = v16{} - INFINITY;
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    v16 x;
    std::memcpy(&x, p + j, sizeof x);
    m16 = x > m16 ? x : m16;
  }
  float m = -INFINITY;
  for (int l = 0; l < 16; l++) m = std::max(m, m16[l]);
  for (; j < n; j++) m = std::max(m, p[j]);
  for (j = 0; j < n; j += 16) {
    float x[16] = {};
    const int w = std::min(16, n - j);
    std::memcpy(x, p + j, sizeof(float) * size_t(w));
    v16 e;
    std::memcpy(&e, x, sizeof e);
    e = vexp(e - m);
    std::memcpy(p + j, &e, sizeof(float) * size_t(w));
  }
  double sum = 0;
  for (j = 0; j < n; j++) sum += p[j];
  *mx = m;
  return sum;
}

}  // namespace tuft
