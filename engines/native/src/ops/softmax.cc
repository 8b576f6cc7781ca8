// softmax.cc — row-parallel log-softmax (max-shifted, double accumulation) and its backward.
#include "softmax.h"

#include <algorithm>
#include <cmath>

#include "../common/pool.h"

namespace tuft {

void logsoftmax_gather(float *logp, float *lse, const float *logits, const int32_t *targets, int n, int V, int K) {
  parallel_for(size_t(n), 1, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      const float *z = logits + r * V;
      float mx = -INFINITY;
      for (int v = 0; v < V; v++) mx = std::max(mx, z[v]);
      float s = 0;  // float lanes per block, summed into double: vectorises and stays accurate
      double sum = 0;
      for (int v0 = 0; v0 < V; v0 += 1024) {
        s = 0;
        int v1 = std::min(V, v0 + 1024);
#pragma omp simd reduction(+ : s)
        for (int v = v0; v < v1; v++) s += std::exp(z[v] - mx);
        sum += s;
      }
      double l = mx + std::log(sum);
      lse[r] = float(l);
      for (int k = 0; k < K; k++) logp[r * K + k] = float(double(z[targets[r * K + k]]) - l);
    }
  });
}

void logsoftmax_gather_backward(float *logits, const float *lse, const int32_t *targets, const float *g, int n,
                                int V, int K) {
  parallel_for(size_t(n), 1, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      float *z = logits + r * V;
      float gs = 0;
      for (int k = 0; k < K; k++) gs += g[r * K + k];
      const float l = lse[r];
#pragma omp simd
      for (int v = 0; v < V; v++) z[v] = -gs * std::exp(z[v] - l);
      for (int k = 0; k < K; k++) z[targets[r * K + k]] += g[r * K + k];
    }
  });
}

}  // namespace tuft
