// kv.cc — the paged KV cache on the CPU: stores of new rows, prompt copies between samples, and
// attention of new rows over the cached keys and values. The attention repeats attention_forward's
// arithmetic per row (dot.h: scores16, softmax_row, normalised axpy) so that sampling matches training.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/pool.h"
#include "cpu.h"
#include "dot.h"

namespace tuft {

namespace {

// k of layer l at position p of the sequence with this block table; its v follows at + KV.
inline float *slot(const KvView &kv, const int32_t *blocks, int l, int p) {
  const size_t block = size_t(blocks[p / KV_BLOCK]);
  return kv.mem + ((block * kv.L + size_t(l)) * KV_BLOCK + size_t(p % KV_BLOCK)) * 2 * kv.KV;
}

}  // namespace

te_status cpu::kv_write(Backend &, KvView kv, const float *k, int ldk, const float *v, int ldv, const CacheRow *rows,
                        int N, int l) {
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) {
      float *s = slot(kv, rows[n].blocks, l, rows[n].pos);
      std::memcpy(s, k + n * ldk, sizeof(float) * kv.KV);
      std::memcpy(s + kv.KV, v + n * ldv, sizeof(float) * kv.KV);
    }
  });
  return TE_OK;
}

te_status cpu::kv_copy(Backend &, KvView kv, const int32_t *dst_blocks, const int32_t *src_blocks, int P) {
  for (int l = 0; l < kv.L; l++)
    for (int p = 0; p < P; p++)
      std::memcpy(slot(kv, dst_blocks, l, p), slot(kv, src_blocks, l, p), sizeof(float) * 2 * kv.KV);
  return TE_OK;
}

te_status cpu::kv_attention(Backend &, float *out, int ldo, const float *q, int ldq, KvView kv, const CacheRow *rows,
                            int N, int l, int NH, int NKV, int HD) {
  const float scale = 1.f / std::sqrt(float(HD));
  const int group = NH / NKV;
  parallel_for(size_t(N) * NH, 1, [&](size_t a, size_t b) {
    std::vector<float> p, kt(size_t(HD) * 16);
    for (size_t task = a; task < b; task++) {
      const size_t n = task / NH;
      const int h = int(task % NH), kvh = h / group, keys = rows[n].pos + 1;
      const CacheRow &r = rows[n];
      p.resize(size_t(keys + 15) / 16 * 16);
      const float *qn = q + n * ldq + size_t(h) * HD;
      for (int j0 = 0; j0 < keys; j0 += 16) {  // 16 keys at a time, transposed (dot.h's scores16)
        std::fill(kt.begin(), kt.end(), 0.f);
        for (int j = j0; j < std::min(keys, j0 + 16); j++) {
          const float *kj = slot(kv, r.blocks, l, j) + size_t(kvh) * HD;
          for (int d = 0; d < HD; d++) kt[size_t(d) * 16 + size_t(j - j0)] = kj[d];
        }
        v16 s;
        scores16<1>(&qn, kt.data(), HD, scale, &s);
        std::memcpy(&p[size_t(j0)], &s, sizeof s);
      }
      float mx;
      const double sum = softmax_row(p.data(), keys, &mx);
      float *o = out + n * ldo + size_t(h) * HD;
      std::memset(o, 0, sizeof(float) * HD);
      const float inv = float(1.0 / sum);
      for (int j = 0; j < keys; j++)
        axpy(o, p[size_t(j)] * inv, slot(kv, r.blocks, l, j) + kv.KV + size_t(kvh) * HD, HD);
    }
  });
  return TE_OK;
}

}  // namespace tuft
