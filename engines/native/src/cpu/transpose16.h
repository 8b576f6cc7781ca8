// transpose16.h — a 16 × 16 float transpose in AVX-512 registers, for the GEMM kernels that broadcast
// one operand against 16 lanes of the other and need the result, or an input, the other way round.
#pragma once
#if defined(__AVX512F__)
#include <immintrin.h>

namespace tuft {

// Lane permutations of one transpose step at distance d: lane l of row i takes lane l of itself or
// lane l − d of row i + d (lo); lane l of row i + d takes lane l + d of row i or its own lane l (hi).
struct Perm {
  alignas(64) int lo[4][16], hi[4][16];
  Perm() {
    for (int s = 0, d = 8; s < 4; s++, d /= 2)
      for (int l = 0; l < 16; l++) {
        lo[s][l] = (l & d) ? 16 + l - d : l;
        hi[s][l] = (l & d) ? 16 + l : l + d;
      }
  }
};
inline const Perm perm;

// r[i][l] ↔ r[l][i]: at each distance d (8, 4, 2, 1) rows i and i + d swap their off-diagonal
// d-blocks, which exchanges one bit of the row index with the same bit of the lane index.
inline void transpose16(__m512 r[16]) {
  for (int s = 0, d = 8; s < 4; s++, d /= 2) {
    const __m512i il = _mm512_load_si512(perm.lo[s]), ih = _mm512_load_si512(perm.hi[s]);
    for (int i = 0; i < 16; i++) {
      if (i & d) continue;
      const __m512 a = r[i], b = r[i + d];
      r[i] = _mm512_permutex2var_ps(a, il, b);
      r[i + d] = _mm512_permutex2var_ps(a, ih, b);
    }
  }
}

}  // namespace tuft

#endif
