// bench_common.h — what the native benchmarks share: a clock helper and the Qwen3-0.6B dimensions they
// build their random-weight model with.
#pragma once
#include <chrono>

#include "model/config.h"

namespace tuft::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

inline Config qwen3_06b() {
  Config c;
  c.arch = Arch::Qwen3, c.arch_name = "qwen3";
  c.V = 151936, c.C = 1024, c.L = 28, c.NH = 16, c.NKV = 8, c.HD = 128, c.FF = 3072;
  c.max_pos = 40960, c.eps = 1e-6f, c.tie = true, c.qk_norm = true, c.rope_theta = 1e6;
  return c;
}

}  // namespace tuft::bench
