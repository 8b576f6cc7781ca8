// choose.cc — token choice: greedy argmax, or a draw from the temperature-scaled distribution after
// top-k and top-p filtering. Top-p over the whole vocabulary sorts only the tokens above a falling
// probability threshold: every token below it is smaller than every token above it, so once the
// tokens above hold the nucleus mass the sorted prefix is exact. A draw over the whole vocabulary (no
// top-k, no top-p: the SDK's default) keeps no probabilities: 16-lane exps summed per block of ids,
// the block holding the draw found from the block sums, and only that block's exps computed again.
#include "choose.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../common/vexp.h"

namespace tuft {

static uint64_t splitmix64(uint64_t &x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (0xd1b54a32d192ed03ull * (stream + 1));
  for (auto &s : s_) s = splitmix64(x);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * 0x1.0p-53; }

namespace {

constexpr int BLOCK = 1024;  // ids per block of the whole-vocabulary draw

inline v16 load16(const float *p) {
  v16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The first id of the largest logit (NaN never wins, as with `>` one id at a time).
int32_t argmax(const float *z, int V) {
  v16 m = v16{} - INFINITY;
  int v = 0;
  for (; v + 16 <= V; v += 16) {
    const v16 x = load16(z + v);
    m = x > m ? x : m;
  }
  float lanes[16];
  std::memcpy(lanes, &m, sizeof lanes);
  float mx = -INFINITY;
  for (float l : lanes) mx = std::max(mx, l);
  for (; v < V; v++) mx = std::max(mx, z[v]);
  for (int i = 0; i < V; i++)
    if (z[i] == mx) return i;
  return 0;  // every logit NaN or −inf
}

// exp((z[v] − mx) · inv_t) for v in [v0, v1) into e (v1 − v0 ≤ BLOCK); returns their sum, in the same
// order whichever pass asks.
double block_exp(const float *z, int v0, int v1, float mx, float inv_t, float *e) {
  v16 s{};
  int v = v0;
  for (; v + 16 <= v1; v += 16) {
    const v16 x = vexp((load16(z + v) - mx) * inv_t);
    s += x;
    if (e) std::memcpy(e + (v - v0), &x, sizeof x);
  }
  float lanes[16];
  std::memcpy(lanes, &s, sizeof lanes);
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; i++) lanes[i] += lanes[i + w];
  double sum = lanes[0];
  for (; v < v1; v++) {
    const float x = std::exp((z[v] - mx) * inv_t);
    sum += x;
    if (e) e[v - v0] = x;
  }
  return sum;
}

// A draw from softmax(z / t) over the whole vocabulary, in id order.
int32_t draw_all(const float *z, int V, float mx, float inv_t, Rng &rng, std::vector<float> &scratch) {
  const int nb = (V + BLOCK - 1) / BLOCK;
  scratch.resize(size_t(nb) + BLOCK);
  float *block_sum = scratch.data();
  float *e = block_sum + nb;
  double mass = 0;
  for (int b = 0; b < nb; b++) {
    block_sum[b] = float(block_exp(z, b * BLOCK, std::min(V, (b + 1) * BLOCK), mx, inv_t, nullptr));
    mass += block_sum[b];
  }
  const double u = rng.uniform() * mass;
  double cum = 0;
  int b = 0;
  while (b + 1 < nb && cum + block_sum[b] <= u) cum += block_sum[b++];
  const int v0 = b * BLOCK, v1 = std::min(V, v0 + BLOCK);
  block_exp(z, v0, v1, mx, inv_t, e);
  int32_t last = v0;
  for (int v = v0; v < v1; v++) {
    if (e[v - v0] > 0) last = v;
    if ((cum += e[v - v0]) > u) return v;
  }
  return last;  // rounding left u just past this block's sum
}

}  // namespace

int32_t choose_token(const float *logits, int V, const ChooseParams &p, Rng &rng, std::vector<float> &prob,
                     std::vector<int32_t> &idx) {
  const int32_t best = argmax(logits, V);
  if (p.temperature <= 0) return best;
  if ((p.top_k <= 0 || p.top_k >= V) && p.top_p >= 1)
    return draw_all(logits, V, logits[best], 1.f / p.temperature, rng, prob);

  // Filtered: candidates are the top-k ids and/or the top-p nucleus (of the top-k ids, or of all).
  const float mx = logits[best], inv_t = 1.f / p.temperature;
  prob.resize(size_t(V));
  for (int v = 0; v < V; v++) prob[size_t(v)] = std::exp((logits[v] - mx) * inv_t);
  auto better = [&](int32_t a, int32_t b) { return prob[size_t(a)] > prob[size_t(b)] || (prob[size_t(a)] == prob[size_t(b)] && a < b); };

  idx.clear();
  const bool top_k = p.top_k > 0 && p.top_k < V;
  if (top_k) {
    idx.resize(size_t(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::nth_element(idx.begin(), idx.begin() + p.top_k, idx.end(), better);
    idx.resize(size_t(p.top_k));
  }
  if (p.top_p < 1) {
    double total = 0;
    if (!top_k) {
      for (int v = 0; v < V; v++) total += prob[size_t(v)];
      for (float thr = 1e-4f;; thr *= 1e-4f) {
        if (thr < 1e-30f) thr = 0;
        idx.clear();
        double above = 0;
        for (int v = 0; v < V; v++)
          if (prob[size_t(v)] >= thr) idx.push_back(v), above += prob[size_t(v)];
        if (above >= p.top_p * total || thr == 0) break;
      }
    } else {
      for (int32_t i : idx) total += prob[size_t(i)];
    }
    std::sort(idx.begin(), idx.end(), better);
    double cum = 0;
    for (size_t i = 0; i < idx.size(); i++) {
      cum += prob[size_t(idx[i])];
      if (cum >= p.top_p * total) {
        idx.resize(i + 1);
        break;
      }
    }
  }

  // Draw in id order, as over the whole vocabulary: selection leaves candidates in an order that the
  // last bits of the logits can change (batching changes those bits), and the draw must not follow it.
  std::sort(idx.begin(), idx.end());
  double mass = 0;
  for (int32_t i : idx) mass += prob[size_t(i)];
  const double u = rng.uniform() * mass;
  double cum = 0;
  for (int32_t i : idx)
    if ((cum += prob[size_t(i)]) > u) return i;
  return idx.back();
}

void top_k_ids(int32_t *ids, const float *logits, int V, int K, std::vector<int32_t> &idx) {
  idx.resize(size_t(V));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::copy(idx.begin(), idx.begin() + K, ids);
}

}  // namespace tuft
