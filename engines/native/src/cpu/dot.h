// dot.h — the inner loops of the CPU attention, shared by training (attention.cc) and the sampler's
// attention over the KV cache (kv.cc), so that both compute every score, softmax weight and output in
// the same order and a sampled token's log-probability is the one training computes, bit for bit.
#pragma once
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

// p[0, n) = exp(p − max) in place; returns Σ p in double, in order, and the max in *mx.
inline double softmax_row(float *p, int n, float *mx) {
  float m = -INFINITY;
  for (int j = 0; j < n; j++) m = std::max(m, p[j]);
  double sum = 0;
  for (int j = 0; j < n; j++) sum += (p[j] = std::exp(p[j] - m));
  *mx = m;
  return sum;
}

}  // namespace tuft
