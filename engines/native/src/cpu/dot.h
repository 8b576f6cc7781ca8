// dot.h — the inner loops of the CPU attention (training and over the KV cache): one pair, so that
// both sum in the same order and a sampled token's log-probability is the one training computes.
#pragma once

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

}  // namespace tuft
