// kv_cache.h — the paged key/value cache of the sampler: one preallocated pool of fixed-size blocks
// (ops/kv.h: KV_BLOCK positions × L layers × (k, v)) in backend memory, handed out to sequences and
// returned when they end. Bounded: the pool never grows; a request that does not fit waits for blocks
// to come back.
#pragma once
#include <cstdint>
#include <vector>

#include "../backend/buffer.h"
#include "../model/config.h"

namespace tuft {

class KvCache {
 public:
  // Allocates the pool on first use: as many blocks as fit in budget_bytes (at least one).
  te_status init(Backend &be, const Config &c, size_t budget_bytes);
  bool ready() const { return n_blocks_ > 0; }
  int capacity() const { return n_blocks_; }
  int free_blocks() const { return int(free_.size()); }
  // Takes n blocks (the caller checked free_blocks()).
  std::vector<int32_t> take(int n);
  void give_back(std::vector<int32_t> &blocks);
  // The memory, for the backend's KV ops.
  KvView view() const { return {mem_.data(), L_, KV_}; }

 private:
  DeviceBuffer mem_;  // [blocks, L, BS, 2, KV]
  std::vector<int32_t> free_;
  int n_blocks_ = 0, L_ = 0, KV_ = 0;
};

}  // namespace tuft
