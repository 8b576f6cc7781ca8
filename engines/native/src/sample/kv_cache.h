// kv_cache.h — the paged key/value cache of the sampler: one preallocated pool of fixed-size blocks
// (BS positions × L layers × (k, v)), handed out to sequences and returned when they end. Bounded:
// the pool never grows; a request that does not fit waits for blocks to come back.
#pragma once
#include <cstdint>
#include <vector>

#include "../common/buffer.h"
#include "../model/config.h"

namespace tuft {

constexpr int KV_BLOCK = 16;  // BS: positions per block

class KvCache {
 public:
  // Allocates the pool on first use: as many blocks as fit in budget_bytes, at least enough for one
  // sequence of max_seq positions.
  te_status init(const Config &c, int max_seq, size_t budget_bytes);
  bool ready() const { return n_blocks_ > 0; }
  int capacity() const { return n_blocks_; }
  int free_blocks() const { return int(free_.size()); }
  // Takes n blocks (the caller checked free_blocks()).
  std::vector<int32_t> take(int n);
  void give_back(std::vector<int32_t> &blocks);

  // k / v of layer l, position p of a sequence with the given block table: [KV] floats each.
  float *k(const std::vector<int32_t> &blocks, int l, int p) {
    return slot(blocks[size_t(p / KV_BLOCK)], l, p % KV_BLOCK);
  }
  float *v(const std::vector<int32_t> &blocks, int l, int p) { return k(blocks, l, p) + KV_; }

 private:
  float *slot(int32_t block, int l, int i) {
    return mem_.data() + ((size_t(block) * L_ + size_t(l)) * KV_BLOCK + size_t(i)) * 2 * KV_;
  }
  Buffer mem_;  // [blocks, L, BS, 2, KV]
  std::vector<int32_t> free_;
  int n_blocks_ = 0, L_ = 0, KV_ = 0;
};

// One query row of the step: its sequence's block table and its position (it attends to 0..pos).
struct CacheRow {
  const std::vector<int32_t> *blocks;
  int pos;
};

// out[n, h*HD..] = Σ_{j ≤ pos_n} softmax_j(q_n · k_j / sqrt(HD)) v_j over the cached keys/values of
// row n's sequence — the same arithmetic as attention_forward, so sampling matches training.
void cached_attention_forward(float *out, int ldo, const float *q, int ldq, KvCache &kv, const CacheRow *rows, int N,
                              int l, int NH, int NKV, int HD);

}  // namespace tuft
