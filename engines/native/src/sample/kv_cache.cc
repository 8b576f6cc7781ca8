// kv_cache.cc — the block pool: allocation in backend memory and the free list.
#include "kv_cache.h"

#include <algorithm>

namespace tuft {

// The budget decides the size, not the model's longest context: Qwen3-0.6B's 40,960 positions would
// take 9.4 GB (a request that needs more than the cache holds is refused with the sizes). The memory
// is not cleared: a position is read only after its sequence wrote it, so pages are touched (and
// resident) only as sequences fill them.
te_status KvCache::init(Backend &be, const Config &c, size_t budget_bytes) {
  L_ = c.L;
  KV_ = c.KV();
  const size_t block_floats = size_t(L_) * KV_BLOCK * 2 * size_t(KV_);
  const int n = int(std::clamp<size_t>(budget_bytes / (block_floats * sizeof(float)), 1, size_t(1) << 24));
  TE_TRY(mem_.reserve(be, size_t(n) * block_floats, "the KV cache"));
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

}  // namespace tuft
