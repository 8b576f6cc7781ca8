// logsoftmax.h — log-softmax of one row of logits over the vocabulary, in 16 float lanes (vexp.h;
// relative error within a few float ulps). Shared by the CPU backend's head_loss and the sampler's host
// code, so that a sampled token's log-probability equals the one training computes on the CPU.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "vexp.h"

namespace tuft {

namespace lsm {

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

}  // namespace lsm

// log Σ_v exp(z[v]), max-shifted.
inline double row_lse(const float *z, int V) {
  using namespace lsm;
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
  return mx + std::log(sum);
}

// logp[k] = z[ids[k]] − log Σ_v exp(z[v]) for k < K.
inline void row_logprobs(float *logp, const float *z, int V, const int32_t *ids, int K) {
  const double l = row_lse(z, V);
  for (int k = 0; k < K; k++) logp[k] = float(double(z[ids[k]]) - l);
}

// z ← −gs · softmax(z) given lse = log Σ exp(z): the part of d loss / d logits that every target shares
// (gs = Σ_k d loss / d logp_k); the caller adds each target's own d loss / d logp_k at its id.
inline void row_softmax_backward(float *z, int V, float lse, float gs) {
  using namespace lsm;
  int v = 0;
  for (; v + 16 <= V; v += 16) {
    const v16 d = -gs * vexp(load(z + v) - lse);
    std::memcpy(z + v, &d, sizeof d);
  }
  if (v < V) {
    float d[16];
    const v16 e = -gs * vexp(load_tail(z + v, V - v, 0.f) - lse);
    std::memcpy(d, &e, sizeof d);
    for (int i = 0; v + i < V; i++) z[v + i] = d[i];
  }
}

}  // namespace tuft
