// kv.h — the sampler's paged key/value cache as the ops see it: fixed blocks of KV_BLOCK positions ×
// L layers × (k, v), handed to sequences through block tables (sample/kv_cache.h owns the pool).
#pragma once
#include <cstdint>

#include "../common/status.h"

namespace tuft {

struct Backend;

constexpr int KV_BLOCK = 16;  // BS: positions per block

// The cache memory: [blocks, L, BS, 2, KV] floats (k then v of each position).
struct KvView {
  float *mem;
  int L, KV;  // layers; NKV · HD
};

// One row of the step: its sequence's block table (host memory, in position order) and its position.
struct CacheRow {
  const int32_t *blocks;
  int pos;
};

// Layer l's k[n, 0:KV] and v[n, 0:KV] stored at position rows[n].pos of row n's sequence.
using KvWrite = te_status(Backend &be, KvView kv, const float *k, int ldk, const float *v, int ldv,
                          const CacheRow *rows, int N, int l);
// Positions [0, P) of every layer copied from one sequence to another (samples sharing one prompt).
using KvCopy = te_status(Backend &be, KvView kv, const int32_t *dst_blocks, const int32_t *src_blocks, int P);
// out[n, h*HD..] = Σ_{j ≤ pos_n} softmax_j(q_n · k_j / sqrt(HD)) v_j over row n's cached keys/values
// of layer l: the arithmetic of attention_forward, so a sampled token's log-probability is the one
// training computes for the same sequence.
using KvAttention = te_status(Backend &be, float *out, int ldo, const float *q, int ldq, KvView kv,
                              const CacheRow *rows, int N, int l, int NH, int NKV, int HD);

}  // namespace tuft
