// buffer.h — checked, 64-byte aligned float storage. One Buffer holds a whole tensor family (base
// weights, LoRA params, grads, Adam moments, activations); named pointers are carved from it.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "status.h"

namespace tuft {

class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { std::free(p_); }
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
  Buffer(Buffer &&o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  Buffer &operator=(Buffer &&o) noexcept {
    if (this != &o) {
      std::free(p_);
      p_ = o.p_, n_ = o.n_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  // Allocates n floats set to zero (TE_ENOMEM on failure; the old contents are released).
  te_status alloc(size_t n, const char *what) {
    std::free(p_);
    p_ = nullptr, n_ = 0;
    size_t bytes = ((n ? n : 1) * sizeof(float) + 63) / 64 * 64;
    p_ = static_cast<float *>(std::aligned_alloc(64, bytes));
    if (!p_) return TE_FAIL(TE_ENOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    std::memset(p_, 0, bytes);
    n_ = n;
    return TE_OK;
  }
  // Grows to at least n floats (contents not kept, not cleared); keeps the allocation when big enough.
  te_status reserve(size_t n, const char *what) {
    if (n <= n_ && p_) return TE_OK;
    return alloc(n, what);
  }
  float *data() const { return p_; }
  size_t size() const { return n_; }
  void zero() {
    if (p_) std::memset(p_, 0, n_ * sizeof(float));
  }

 private:
  float *p_ = nullptr;
  size_t n_ = 0;
};

// Rounds an element count up to a whole cache line of floats, so carved tensors stay aligned.
inline size_t align16(size_t n) { return (n + 15) / 16 * 16; }

}  // namespace tuft
