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
#include "transpose16.h"

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

// One task per (row, KV head): the query heads that share the KV head read each block of 16 cached
// keys once, transposed 16 dims at a time in registers where the CPU has AVX-512 (transpose16; a
// scalar copy into scores16's layout elsewhere), and the values once per 16 output dims. Each score
// and output is the same multiply-add chain as scores16 and attention_forward's sums over keys.
constexpr int KV_HEADS_PER_PASS = 4;  // query heads whose outputs stay in registers together

te_status cpu::kv_attention(Backend &, float *out, int ldo, const float *q, int ldq, KvView kv, const CacheRow *rows,
                            int N, int l, int NH, int NKV, int HD) {
  const float scale = 1.f / std::sqrt(float(HD));
  const int group = NH / NKV, HD16 = HD / 16 * 16;
  const size_t stride = size_t(2) * kv.KV;  // between consecutive positions of one block
  parallel_for(size_t(N) * NKV, 1, [&](size_t a, size_t b) {
    thread_local std::vector<float> p, kt;
    kt.resize(size_t(HD) * 16);
    for (size_t task = a; task < b; task++) {
      const size_t n = task / NKV;
      const int kvh = int(task % NKV), keys = rows[n].pos + 1, W = (keys + 15) / 16 * 16;
      const CacheRow &r = rows[n];
      p.resize(size_t(group) * W);
      for (int h0 = 0; h0 < group; h0 += KV_HEADS_PER_PASS) {
        const int nq = std::min(KV_HEADS_PER_PASS, group - h0);
        const float *qh[KV_HEADS_PER_PASS];
        for (int i = 0; i < KV_HEADS_PER_PASS; i++)
          qh[i] = q + n * ldq + size_t(kvh * group + h0 + std::min(i, nq - 1)) * HD;
        for (int j0 = 0; j0 < keys; j0 += 16) {  // one cache block: positions j0 … j0 + 15
          const float *k0 = slot(kv, r.blocks, l, j0) + size_t(kvh) * HD;
          const int nk = std::min(16, keys - j0);
          // This head's keys and values of the next block: HD floats every 2·KV, which the hardware
          // prefetchers do not follow (one 4 KiB page apart or more at Qwen3-0.6B's sizes).
          if (j0 + 16 < keys && h0 == 0)
            for (int j = 0; j < std::min(16, keys - j0 - 16); j++) {
              const float *kn = slot(kv, r.blocks, l, j0 + 16 + j) + size_t(kvh) * HD;
              for (int d = 0; d < HD; d += 16) __builtin_prefetch(kn + d), __builtin_prefetch(kn + kv.KV + d);
            }
          v16 s[KV_HEADS_PER_PASS] = {};
#if defined(__AVX512F__)
          if (HD16 == HD) {
            for (int d0 = 0; d0 < HD; d0 += 16) {
              __m512 t[16];
              for (int j = 0; j < 16; j++) t[j] = j < nk ? _mm512_loadu_ps(k0 + j * stride + d0) : _mm512_setzero_ps();
              transpose16(t);  // t[i] lane j = key j0 + j at dim d0 + i
              for (int i = 0; i < 16; i++) {
                v16 k;
                std::memcpy(&k, &t[i], sizeof k);
                for (int h = 0; h < KV_HEADS_PER_PASS; h++) s[h] += qh[h][d0 + i] * k;
              }
            }
            for (int h = 0; h < KV_HEADS_PER_PASS; h++) s[h] *= scale;
          } else
#endif
          {
            std::fill(kt.begin(), kt.end(), 0.f);
            for (int j = 0; j < nk; j++)
              for (int d = 0; d < HD; d++) kt[size_t(d) * 16 + size_t(j)] = k0[size_t(j) * stride + size_t(d)];
            scores16<KV_HEADS_PER_PASS>(qh, kt.data(), HD, scale, s);
          }
          for (int h = 0; h < nq; h++) std::memcpy(&p[size_t(h0 + h) * W + size_t(j0)], &s[h], sizeof(v16));
        }
        for (int h = 0; h < nq; h++) {  // normalised weights, as attention_forward's
          float *ph = &p[size_t(h0 + h) * W], mx;
          const float inv = float(1.0 / softmax_row(ph, keys, &mx));
          for (int j = 0; j < keys; j++) ph[j] *= inv;
        }
        for (int c = 0; c < HD16; c += 16) {
          v16 acc[KV_HEADS_PER_PASS] = {};
          for (int j0 = 0; j0 < keys; j0 += 16) {
            const float *v0 = slot(kv, r.blocks, l, j0) + kv.KV + size_t(kvh) * HD + c;
            for (int j = 0; j < std::min(16, keys - j0); j++) {
              v16 x;
              std::memcpy(&x, v0 + j * stride, sizeof x);
              for (int h = 0; h < nq; h++) acc[h] += p[size_t(h0 + h) * W + size_t(j0 + j)] * x;
            }
          }
          for (int h = 0; h < nq; h++) std::memcpy(out + n * ldo + size_t(kvh * group + h0 + h) * HD + c, &acc[h], sizeof(v16));
        }
        if (HD16 < HD)  // the dims past the last 16
          for (int h = 0; h < nq; h++) {
            float *o = out + n * ldo + size_t(kvh * group + h0 + h) * HD + HD16;
            std::memset(o, 0, sizeof(float) * size_t(HD - HD16));
            for (int j = 0; j < keys; j++)
              axpy(o, p[size_t(h0 + h) * W + size_t(j)], slot(kv, r.blocks, l, j) + kv.KV + size_t(kvh) * HD + HD16,
                   HD - HD16);
          }
      }
    }
  });
  return TE_OK;
}

}  // namespace tuft
