// kv_cache.cc — the block pool and attention of new rows over cached keys and values. The inner loops
// repeat attention_forward's (scaled dot, max shift, double sum, normalised axpy) so that a sampled
// token's log-probability equals the one forward/backward computes for the same sequence.
#include "kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/pool.h"

namespace tuft {

te_status KvCache::init(const Config &c, int max_seq, size_t budget_bytes) {
  L_ = c.L;
  KV_ = c.KV();
  const size_t block_floats = size_t(L_) * KV_BLOCK * 2 * size_t(KV_);
  const int min_blocks = (max_seq + KV_BLOCK - 1) / KV_BLOCK;
  int n = int(std::min<size_t>(budget_bytes / (block_floats * sizeof(float)), size_t(1) << 24));
  n = std::max(n, min_blocks);
  TE_TRY(mem_.alloc(size_t(n) * block_floats, "the KV cache"));
  n_blocks_ = n;
  free_.resize(size_t(n));
  for (int i = 0; i < n; i++) free_[size_t(i)] = n - 1 - i;  // pop_back hands out low blocks first
  return TE_OK;
}

std::vector<int32_t> KvCache::take(int n) {
  std::vector<int32_t> out(free_.end() - n, free_.end());
  free_.resize(free_.size() - size_t(n));
  return out;
}

void KvCache::give_back(std::vector<int32_t> &blocks) {
  free_.insert(free_.end(), blocks.begin(), blocks.end());
  blocks.clear();
}

static inline float dot(const float *a, const float *b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static inline void axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}

void cached_attention_forward(float *out, int ldo, const float *q, int ldq, KvCache &kv, const CacheRow *rows, int N,
                              int l, int NH, int NKV, int HD) {
  const float scale = 1.f / std::sqrt(float(HD));
  const int group = NH / NKV;
  parallel_for(size_t(N) * NH, 1, [&](size_t a, size_t b) {
    std::vector<float> p;
    for (size_t task = a; task < b; task++) {
      const size_t n = task / NH;
      const int h = int(task % NH), kvh = h / group;
      const CacheRow &r = rows[n];
      p.resize(size_t(r.pos) + 1);
      const float *qn = q + n * ldq + size_t(h) * HD;
      float mx = -INFINITY;
      for (int j = 0; j <= r.pos; j++) {
        p[size_t(j)] = scale * dot(qn, kv.k(*r.blocks, l, j) + size_t(kvh) * HD, HD);
        mx = std::max(mx, p[size_t(j)]);
      }
      double sum = 0;
      for (int j = 0; j <= r.pos; j++) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
      float *o = out + n * ldo + size_t(h) * HD;
      std::memset(o, 0, sizeof(float) * HD);
      const float inv = float(1.0 / sum);
      for (int j = 0; j <= r.pos; j++) axpy(o, p[size_t(j)] * inv, kv.v(*r.blocks, l, j) + size_t(kvh) * HD, HD);
    }
  });
}

}  // namespace tuft
