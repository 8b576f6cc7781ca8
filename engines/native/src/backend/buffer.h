// buffer.h — a float tensor family in a backend's memory (what common/buffer.h is for host memory):
// allocated through the backend's table and given back to it, named pointers carved from it.
#pragma once
#include <cstddef>

#include "backend.h"

namespace tuft {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  // n floats set to zero (the old contents are released first).
  te_status alloc(Backend &be, size_t n, const char *what) {
    TE_TRY(reserve_new(be, n, what));
    return be.op->zero(be, p_, bytes(n));
  }
  // At least n floats, contents not kept nor cleared; keeps the allocation when big enough.
  te_status reserve(Backend &be, size_t n, const char *what) {
    if (p_ && n <= n_) return TE_OK;
    return reserve_new(be, n, what);
  }
  float *data() const { return p_; }
  size_t size() const { return n_; }

 private:
  static size_t bytes(size_t n) { return ((n ? n : 1) * sizeof(float) + 63) / 64 * 64; }
  te_status reserve_new(Backend &be, size_t n, const char *what) {
    release();
    void *p = nullptr;
    te_status s = be.op->alloc(be, bytes(n), &p);
    if (s != TE_OK) return wrap_error(s, what);
    be_ = &be, p_ = static_cast<float *>(p), n_ = n;
    return TE_OK;
  }
  void release() {
    if (p_) be_->op->free(*be_, p_);
    be_ = nullptr, p_ = nullptr, n_ = 0;
  }
  Backend *be_ = nullptr;
  float *p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace tuft
