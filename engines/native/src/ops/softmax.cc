// softmax.cc — row-parallel log-softmax (max-shifted, double accumulation) and its backward.
// The exp over the vocabulary is the vector exp below (16 lanes; relative error within a few float
// ulps), not the C library's scalar one: every caller — training and the sampler — goes through these
// same loops, so sampled and trained log-probabilities agree.
#include "softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/pool.h"
#include "vexp.h"

namespace tuft {

namespace {

inline v16 load(const float *p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The last n < 16 values, the other lanes at `fill`.
inline v16 load_tail(const float *p, int n, float fill) {
  float a[16];
  for (int i = 0; i < 16; i++) a[i] = i < n ? p[i] : fill;
  return load(a);
}

inline double lane_sum(v16 v) {
  float a[16];
  std::memcpy(a, &v, sizeof a);
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; i++) a[i] += a[i + w];
  return a[0];
}

}  // namespace

void logsoftmax_gather(float *logp, float *lse, const float *logits, const int32_t *targets, int n, int V, int K) {
  parallel_for(size_t(n), 1, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      const float *z = logits + r * V;
      // Max over 16 lanes (exact whatever the order).
      v16 m = v16{} - INFINITY;
      int j = 0;
      for (; j + 16 <= V; j += 16) {
        const v16 x = load(z + j);
        m = m > x ? m : x;
      }
      float lanes[16];
      std::memcpy(lanes, &m, sizeof lanes);
      float mx = -INFINITY;
      for (int i = 0; i < 16; i++) mx = std::max(mx, lanes[i]);
      for (; j < V; j++) mx = std::max(mx, z[j]);
      // Σ exp(z − max): float lanes per block of 1024, summed into double (accurate and fast).
      double sum = 0;
      for (int v0 = 0; v0 < V; v0 += 1024) {
        const int v1 = std::min(V, v0 + 1024);
        v16 s{};
        int v = v0;
        for (; v + 16 <= v1; v += 16) s += vexp(load(z + v) - mx);
        if (v < v1) s += vexp(load_tail(z + v, v1 - v, -INFINITY) - mx);
        sum += lane_sum(s);
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
      int v = 0;
      for (; v + 16 <= V; v += 16) {
        const v16 d = -gs * vexp(load(z + v) - l);
        std::memcpy(z + v, &d, sizeof d);
      }
      if (v < V) {
        float d[16];
        const v16 e = -gs * vexp(load_tail(z + v, V - v, 0.f) - l);
        std::memcpy(d, &e, sizeof d);
        for (int i = 0; v + i < V; i++) z[v + i] = d[i];
      }
      for (int k = 0; k < K; k++) z[targets[r * K + k]] += g[r * K + k];
    }
  });
}

}  // namespace tuft
