// vexp.h — exp on 16 float lanes (GCC vector extensions, so -march=native picks the widest unit),
// for the loops over whole rows: log-softmax over the vocabulary and the SiLU of the MLP.
#pragma once
#include <cstring>

namespace tuft {

typedef float v16 __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));

// exp(x): x = n ln2 + r (n = round(x / ln2), |r| ≤ ln2 / 2, ln2 split in two for an exact
// n·ln2_hi), e^r by its Taylor series to r^7 (truncation < 1e-8 relative), times 2^n built in the
// exponent bits. Below −87.5 the result is ~1e-38 instead of smaller, above 88 it is e^88 ≈ 1.7e38
// instead of larger (nothing downstream can tell).
// NaN stays NaN.
inline v16 vexp(v16 x) {
  const v16 lo = v16{} - 87.5f, hi = v16{} + 88.f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const v16 magic = v16{} + 12582912.f;  // 1.5 · 2^23: adding and subtracting it rounds to an integer
  const v16 fn = (x * 1.44269504088896341f + magic) - magic;
  const v16 r = (x - fn * 0.693359375f) + fn * 2.12194440e-4f;
  v16 p = v16{} + (1.f / 5040);
  p = p * r + (1.f / 720);
  p = p * r + (1.f / 120);
  p = p * r + (1.f / 24);
  p = p * r + (1.f / 6);
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const v16i bits = (__builtin_convertvector(fn, v16i) + 127) << 23;
  v16 scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace tuft
