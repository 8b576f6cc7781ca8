// gemm.cc — sgemm dispatch and the built-in blocked GEMM: B is packed in KC×NR slivers per NC block,
// each task packs its MC×KC block of A in MR slivers, and a 6×16 register-tile kernel (GCC vector
// extensions, so -march=native picks AVX2/AVX-512 where the machine has it) accumulates into C.
#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/pool.h"

#ifdef TUFT_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace tuft {

namespace {

constexpr int MR = 6, NR = 16, KC = 256, MC = 96, NC = 4096;
typedef float v8 __attribute__((vector_size(32)));

inline float at(const float *X, int ld, bool trans, int r, int c) {
  return trans ? X[size_t(c) * ld + r] : X[size_t(r) * ld + c];
}

// acc[MR][NR] = Σ_k a[k][0..MR) ⊗ b[k][0..NR) over kc steps of packed slivers.
inline void kernel_6x16(int kc, const float *a, const float *b, float *acc) {
  v8 c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {}, c40 = {}, c41 = {},
     c50 = {}, c51 = {};
  for (int k = 0; k < kc; k++) {
    v8 b0, b1;
    std::memcpy(&b0, b + k * NR, sizeof b0);
    std::memcpy(&b1, b + k * NR + 8, sizeof b1);
    const float *ak = a + k * MR;
    v8 a0 = {ak[0], ak[0], ak[0], ak[0], ak[0], ak[0], ak[0], ak[0]};
    c00 += a0 * b0, c01 += a0 * b1;
    v8 a1 = {ak[1], ak[1], ak[1], ak[1], ak[1], ak[1], ak[1], ak[1]};
    c10 += a1 * b0, c11 += a1 * b1;
    v8 a2 = {ak[2], ak[2], ak[2], ak[2], ak[2], ak[2], ak[2], ak[2]};
    c20 += a2 * b0, c21 += a2 * b1;
    v8 a3 = {ak[3], ak[3], ak[3], ak[3], ak[3], ak[3], ak[3], ak[3]};
    c30 += a3 * b0, c31 += a3 * b1;
    v8 a4 = {ak[4], ak[4], ak[4], ak[4], ak[4], ak[4], ak[4], ak[4]};
    c40 += a4 * b0, c41 += a4 * b1;
    v8 a5 = {ak[5], ak[5], ak[5], ak[5], ak[5], ak[5], ak[5], ak[5]};
    c50 += a5 * b0, c51 += a5 * b1;
  }
  v8 rows[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
  std::memcpy(acc, rows, sizeof rows);
}

}  // namespace

void sgemm_builtin(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  // beta == 0 means C is not read (it may hold garbage or NaN), as in BLAS.
  parallel_for(size_t(M), 16, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; r++) {
      float *c = C + r * ldc;
      if (beta == 0.f) std::memset(c, 0, sizeof(float) * N);
      else if (beta != 1.f)
        for (int j = 0; j < N; j++) c[j] *= beta;
    }
  });
  if (K <= 0 || alpha == 0.f) return;

  std::vector<float> bpack(size_t(KC) * ((std::min(N, NC) + NR - 1) / NR) * NR);
  for (int n0 = 0; n0 < N; n0 += NC) {
    int nc = std::min(NC, N - n0);
    int n_sliv = (nc + NR - 1) / NR;
    for (int k0 = 0; k0 < K; k0 += KC) {
      int kc = std::min(KC, K - k0);
      // Pack op(B)[k0:k0+kc, n0:n0+nc] as slivers [n_sliv][kc][NR], zero-padded.
      parallel_for(size_t(n_sliv), 4, [&](size_t s0, size_t s1) {
        for (size_t s = s0; s < s1; s++) {
          float *dst = bpack.data() + s * size_t(kc) * NR;
          int j0 = n0 + int(s) * NR, jn = std::min(NR, n0 + nc - j0);
          for (int k = 0; k < kc; k++)
            for (int j = 0; j < NR; j++) dst[k * NR + j] = j < jn ? at(B, ldb, tb, k0 + k, j0 + j) : 0.f;
        }
      });
      // Tasks: MC-row blocks × column ranges of whole slivers.
      int m_blocks = (M + MC - 1) / MC;
      int n_parts = std::max(1, std::min(n_sliv, (current_threads() * 2 + m_blocks - 1) / m_blocks));
      int sliv_per_part = (n_sliv + n_parts - 1) / n_parts;
      parallel_for(size_t(m_blocks) * n_parts, 1, [&](size_t t0, size_t t1) {
        std::vector<float> apack(size_t(MC) * kc);
        float acc[MR * NR];
        for (size_t t = t0; t < t1; t++) {
          int mb = int(t / n_parts), np = int(t % n_parts);
          int m0 = mb * MC, mc = std::min(MC, M - m0);
          int sa = np * sliv_per_part, sb = std::min(n_sliv, sa + sliv_per_part);
          if (sa >= sb) continue;
          int m_sliv = (mc + MR - 1) / MR;
          for (int s = 0; s < m_sliv; s++) {
            float *dst = apack.data() + size_t(s) * kc * MR;
            int i0 = m0 + s * MR, in = std::min(MR, m0 + mc - i0);
            for (int k = 0; k < kc; k++)
              for (int i = 0; i < MR; i++) dst[k * MR + i] = i < in ? at(A, lda, ta, i0 + i, k0 + k) : 0.f;
          }
          for (int js = sa; js < sb; js++) {
            const float *bp = bpack.data() + size_t(js) * kc * NR;
            int j0 = n0 + js * NR, jn = std::min(NR, N - j0);
            for (int s = 0; s < m_sliv; s++) {
              kernel_6x16(kc, apack.data() + size_t(s) * kc * MR, bp, acc);
              int i0 = m0 + s * MR, in = std::min(MR, m0 + mc - i0);
              for (int i = 0; i < in; i++) {
                float *c = C + size_t(i0 + i) * ldc + j0;
                for (int j = 0; j < jn; j++) c[j] += alpha * acc[i * NR + j];
              }
            }
          }
        }
      });
    }
  }
}

#ifdef TUFT_HAVE_OPENBLAS
void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
           int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // BLAS rejects lda < 1; the built-in path just scales C
    sgemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
}
const char *gemm_backend() { return "openblas"; }
void gemm_set_threads(int n) { openblas_set_num_threads(n); }
#else
void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
           int ldb, float beta, float *C, int ldc) {
  sgemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
const char *gemm_backend() { return "builtin"; }
void gemm_set_threads(int) {}
#endif

}  // namespace tuft
