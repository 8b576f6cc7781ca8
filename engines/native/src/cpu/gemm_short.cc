// gemm_short.cc — C = A·Bᵀ with a short K (at most 64: a LoRA B-product, K = rank) and few rows, with
// AVX-512. As dot products along K, each output would need a horizontal reduction as long as its
// arithmetic; here 16 rows of B are broadcast, one k at a time, against 16 rows of A side by side
// (A transposed first: at most 64 × 16 floats), and the 16 × 16 result is transposed in registers
// before it is stored. Every output is one chain of FMAs over k in order, whatever M, so a row's
// result does not depend on the rows beside it.
#include <immintrin.h>

#include <algorithm>

#include "gemm.h"
#include "transpose16.h"

namespace tuft {

#if defined(__AVX512F__)

namespace {

inline __mmask16 first(int n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << std::max(n, 0)) - 1); }

// acc[j] lane i = Σ_k B[j][k] · at[k][i] over 16 rows of B (row stride ldb). B streams from memory
// (a LoRA B is read once per call), so the next 16 rows are prefetched, one line per k.
inline void block16(int K, const float *at, const float *B, size_t ldb, __m512 acc[16], const char *next,
                    int next_lines) {
  for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    for (int l = k; l < next_lines; l += K) _mm_prefetch(next + size_t(l) * 64, _MM_HINT_T0);
    const __m512 a = _mm512_load_ps(at + k * 16);
    for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(B[j * ldb + k]), a, acc[j]);
  }
}

// The same sums for at most FEW_ROWS rows of A, columns in lanes: out[i] lane j = Σ_k A[i][k] · B[j][k]
// over the nr ≤ 16 rows of B from `B`. The rows of B are transposed 16 k at a time, so each output is
// the same FMA chain over k in order as block16 computes (products commute exactly): a row's result
// is bit for bit the one it gets among 16. A decode step's row per adapter then costs K FMAs per 16
// columns instead of block16's 16 K.
constexpr int FEW_ROWS = 4;
inline void few_rows16(int mr, int K, const float *A, size_t lda, const float *B, size_t ldb, int nr,
                       __m512 out[FEW_ROWS]) {
  for (int i = 0; i < mr; i++) out[i] = _mm512_setzero_ps();
  for (int k0 = 0; k0 < K; k0 += 16) {
    const __mmask16 ks = first(K - k0);
    __m512 bt[16];
    for (int j = 0; j < 16; j++) bt[j] = j < nr ? _mm512_maskz_loadu_ps(ks, B + j * ldb + k0) : _mm512_setzero_ps();
    transpose16(bt);  // bt[k] lane j = B[j][k0 + k]
    for (int k = 0; k < std::min(16, K - k0); k++)
      for (int i = 0; i < mr; i++) out[i] = _mm512_fmadd_ps(_mm512_set1_ps(A[i * lda + k0 + k]), bt[k], out[i]);
  }
}

// C[i][0, nr) = alpha · rows[i] + beta · C[i] for the first mr rows (row stride ldc).
inline void store_rows(const __m512 *rows, int mr, int nr, float alpha, float beta, float *C, int ldc) {
  const __mmask16 cols = first(nr);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int i = 0; i < mr; i++) {
    float *c = C + size_t(i) * ldc;
    __m512 r = _mm512_mul_ps(va, rows[i]);
    if (beta != 0.f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(cols, c), r);  // beta 0 never reads C
    _mm512_mask_storeu_ps(c, cols, r);
  }
}

}  // namespace

bool short_k_avx512() { return true; }

void short_k_cols(size_t g0, size_t g1, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc) {
  for (int m0 = 0; m0 < M; m0 += 16) {
    const int mr = std::min(16, M - m0);
    if (mr <= FEW_ROWS) {
      for (size_t g = g0; g < g1; g++) {
        const int n0 = int(g) * 16, nr = std::min(16, N - n0);
        __m512 out[FEW_ROWS];
        few_rows16(mr, K, A + size_t(m0) * lda, size_t(lda), B + size_t(n0) * ldb, size_t(ldb), nr, out);
        store_rows(out, mr, nr, alpha, beta, C + size_t(m0) * ldc + n0, ldc);
      }
      continue;
    }
    alignas(64) float at[64 * 16];  // at[k][i] = A[m0 + i][k], zero beyond the rows
    for (int k = 0; k < K; k++)
      for (int i = 0; i < 16; i++) at[k * 16 + i] = i < mr ? A[size_t(m0 + i) * lda + k] : 0.f;
    for (size_t g = g0; g < g1; g++) {
      const int n0 = int(g) * 16, nr = std::min(16, N - n0);
      __m512 acc[16];
      if (nr == 16) {
        // The next group's rows: contiguous when ldb == K (a LoRA B), else one line per row.
        const int left = std::min(16, N - n0 - 16);
        const char *next = reinterpret_cast<const char *>(B + size_t(n0 + 16) * ldb);
        const int lines = left <= 0 ? 0 : ldb == K ? (left * K * 4 + 63) / 64 : 0;
        block16(K, at, B + size_t(n0) * ldb, size_t(ldb), acc, next, lines);
      } else {  // the last columns: their rows of B, zero-padded to 16
        alignas(64) float tail[16 * 64] = {};
        for (int j = 0; j < nr; j++)
          for (int k = 0; k < K; k++) tail[j * 64 + k] = B[size_t(n0 + j) * ldb + k];
        block16(K, at, tail, 64, acc, nullptr, 0);
      }
      transpose16(acc);  // acc[i] = row m0 + i, columns n0 …
      store_rows(acc, mr, nr, alpha, beta, C + size_t(m0) * ldc + n0, ldc);
    }
  }
}

#else

bool short_k_avx512() { return false; }
void short_k_cols(size_t, size_t, int, int, int, float, const float *, int, const float *, int, float, float *, int) {}

#endif

}  // namespace tuft
