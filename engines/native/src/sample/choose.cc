// choose.cc — token choice: greedy argmax, or a draw from the temperature-scaled distribution after
// top-k and top-p filtering. Top-p over the whole vocabulary sorts only the tokens above a falling
// probability threshold: every token below it is smaller than every token above it, so once the
// tokens above hold the nucleus mass the sorted prefix is exact.
#include "choose.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

int32_t choose_token(const float *logits, int V, const ChooseParams &p, Rng &rng, std::vector<float> &prob,
                     std::vector<int32_t> &idx) {
  int32_t best = 0;
  for (int v = 1; v < V; v++)
    if (logits[v] > logits[best]) best = v;
  if (p.temperature <= 0) return best;

  const float mx = logits[best], inv_t = 1.f / p.temperature;
  prob.resize(size_t(V));
  for (int v = 0; v < V; v++) prob[size_t(v)] = std::exp((logits[v] - mx) * inv_t);
  auto better = [&](int32_t a, int32_t b) { return prob[size_t(a)] > prob[size_t(b)] || (prob[size_t(a)] == prob[size_t(b)] && a < b); };

  // Candidates: the top-k ids, or every id (kept implicit: idx empty, id order).
  idx.clear();
  bool all = true;
  if (p.top_k > 0 && p.top_k < V) {
    idx.resize(size_t(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::nth_element(idx.begin(), idx.begin() + p.top_k, idx.end(), better);
    idx.resize(size_t(p.top_k));
    all = false;
  }
  if (p.top_p < 1) {
    double total = 0;
    if (all) {
      for (int v = 0; v < V; v++) total += prob[size_t(v)];
      for (float thr = 1e-4f;; thr *= 1e-4f) {
        if (thr < 1e-30f) thr = 0;
        idx.clear();
        double above = 0;
        for (int v = 0; v < V; v++)
          if (prob[size_t(v)] >= thr) idx.push_back(v), above += prob[size_t(v)];
        if (above >= p.top_p * total || thr == 0) break;
      }
      all = false;
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
  if (!all) std::sort(idx.begin(), idx.end());

  double mass = 0;
  if (all) {
    for (int v = 0; v < V; v++) mass += prob[size_t(v)];
  } else {
    for (int32_t i : idx) mass += prob[size_t(i)];
  }
  const double u = rng.uniform() * mass;
  double cum = 0;
  if (all) {
    for (int v = 0; v < V; v++)
      if ((cum += prob[size_t(v)]) > u) return v;
    return V - 1;
  }
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
