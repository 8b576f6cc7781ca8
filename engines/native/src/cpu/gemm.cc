// gemm.cc — sgemm dispatch, the small-M streaming kernel and the built-in blocked GEMM.
//
// Dispatch: C = A·Bᵀ with at most SMALL_M rows (decode steps, the LM head of a few rows, LoRA of a
// few rows) goes to sgemm_small, which streams B (the weight) once without packing it; mid-sized and
// short-K shapes to their AVX-512 kernels (gemm_mid.cc); everything else to the general GEMM the
// backend chose: OpenBLAS (single-threaded, called from every pool thread on its own slice of C, so
// one set of threads serves the whole engine and no BLAS thread spins while the pool works) or the
// built-in kernel: B is packed in KC×NR slivers per NC block, each task packs its MC×KC block
// of A in MR slivers, and a 6×16 register-tile kernel (GCC vector extensions, so -march=native
// picks AVX2/AVX-512 where the machine has it) accumulates into C.
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


// ---- small M: C[M, N] = alpha · A[M, K] · B[N, K]ᵀ + beta · C, B streamed once ----------------------
// Every output is a dot product of a row of A and a row of B along K. Rows of A (cache resident) meet
// 8 rows of B at a time (4 or 16 in the tails and for short K); each row of B is read from memory once.
typedef float v16 __attribute__((vector_size(64)));

// Pairwise, so the adds do not form one long dependency chain (K = R of a LoRA B is one vector).
inline float hsum(v16 v) {
  float a[16];
  std::memcpy(a, &v, sizeof a);
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; i++) a[i] += a[i + w];
  return a[0];
}

// Lane i of the result = hsum(v[i]), in the same pairwise order (lane l + lane l+8, then +4, +2, +1)
// but 15 vector adds for 16 sums instead of 15 scalar adds each: with K = R (a LoRA B-product) the
// reduction is most of the work.
typedef int v16i __attribute__((vector_size(64)));
inline v16 hsum16(const v16 *v) {
  v16 x[8], y[4], z[2];
  for (int i = 0; i < 8; i++)  // lanes 0-7: partials of v[2i], 8-15: of v[2i+1]
    x[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], v16i{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}) +
           __builtin_shuffle(v[2 * i], v[2 * i + 1], v16i{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31});
  for (int i = 0; i < 4; i++)  // four lanes per vector
    y[i] = __builtin_shuffle(x[2 * i], x[2 * i + 1], v16i{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27}) +
           __builtin_shuffle(x[2 * i], x[2 * i + 1], v16i{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31});
  for (int i = 0; i < 2; i++)  // two lanes per vector
    z[i] = __builtin_shuffle(y[2 * i], y[2 * i + 1], v16i{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29}) +
           __builtin_shuffle(y[2 * i], y[2 * i + 1], v16i{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31});
  return __builtin_shuffle(z[0], z[1], v16i{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}) +
         __builtin_shuffle(z[0], z[1], v16i{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31});
}

// out[i * NB + j] = Σ_k A[i, k] · B[j, k] for i < MB, j < NB. Every output sums in the same order
// whatever MB and NB, so a row's result does not depend on how many rows share the call.
template <int MB, int NB>
inline void dot_block(int K, const float *A, int lda, const float *B, int ldb, float *out) {
  v16 acc[MB][NB];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) acc[i][j] = v16{};
  int k = 0;
  for (; k + 16 <= K; k += 16) {
    v16 b[NB];
    for (int j = 0; j < NB; j++) {
      std::memcpy(&b[j], B + size_t(j) * ldb + k, sizeof(v16));
      // keep the B vectors in registers: one load each per step, not one per row of A (one row of A:
      // nothing to share, and NB = 16 vectors would not fit beside the accumulators). Only where a
      // 16-float vector is one register: elsewhere the constraint cannot be met.
#if defined(__AVX512F__)
      if (MB > 1) asm("" : "+x"(b[j]));
#endif
    }
    for (int i = 0; i < MB; i++) {
      v16 a;
      std::memcpy(&a, A + size_t(i) * lda + k, sizeof(v16));
      for (int j = 0; j < NB; j++) acc[i][j] += a * b[j];
    }
  }
  float sums[MB * NB];
  if constexpr (MB * NB == 16) {
    v16 r = hsum16(&acc[0][0]);
    std::memcpy(sums, &r, sizeof r);
  } else {
    for (int i = 0; i < MB; i++)
      for (int j = 0; j < NB; j++) sums[i * NB + j] = hsum(acc[i][j]);
  }
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < NB; j++) {
      float s = sums[i * NB + j];
      for (int kk = k; kk < K; kk++) s += A[size_t(i) * lda + kk] * B[size_t(j) * ldb + kk];
      out[i * NB + j] = s;
    }
}

template <int NB>
inline void dot_rows(int mb, int K, const float *A, int lda, const float *B, int ldb, float *out) {
  switch (mb) {
    case 1: dot_block<1, NB>(K, A, lda, B, ldb, out); break;
    case 2: dot_block<2, NB>(K, A, lda, B, ldb, out); break;
    case 3: dot_block<3, NB>(K, A, lda, B, ldb, out); break;
    default: dot_block<4, NB>(K, A, lda, B, ldb, out); break;
  }
}

inline void store(float *C, int ldc, int mb, int nb, const float *out, int ld_out, float alpha, float beta) {
  for (int i = 0; i < mb; i++) {
    float *c = C + size_t(i) * ldc;
    for (int j = 0; j < nb; j++) c[j] = alpha * out[i * ld_out + j] + (beta == 0.f ? 0.f : beta * c[j]);
  }
}

// Columns [n0, n0 + 4 · groups) of C, in groups of 4 columns (B rows) against blocks of 4 rows of A:
// the column tails of the kernels below.
void small_cols4(size_t g0, size_t g1, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
  float out[16];
  for (size_t g = g0; g < g1; g++) {
    const int n0 = int(g) * 4, nb = std::min(4, N - n0);
    for (int m0 = 0; m0 < M; m0 += 4) {
      const int mb = std::min(4, M - m0);
      const float *a = A + size_t(m0) * lda;
      if (nb == 4) {
        dot_rows<4>(mb, K, a, lda, B + size_t(n0) * ldb, ldb, out);
      } else {
        float one[4];
        for (int j = 0; j < nb; j++) {
          dot_rows<1>(mb, K, a, lda, B + size_t(n0 + j) * ldb, ldb, one);
          for (int i = 0; i < mb; i++) out[i * 4 + j] = one[i];
        }
      }
      store(C + size_t(m0) * ldc + n0, ldc, mb, nb, out, 4, alpha, beta);
    }
  }
}

// The same for long K in groups of 8 columns against pairs of rows of A (the last row alone): a pair
// loads 8 B vectors and 2 A vectors per 16 multiply-adds where 4 × 4 loads 4 and 4, and A (32 rows of
// an LM-head product: 64 KiB at hidden 512) leaves L1 where the 8 B rows stay in it: 1.7× faster on the
// LM head of 32 rows. The sums are the same as 4 × 4's, bit for bit (dot_block).
void small_cols8(size_t g0, size_t g1, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
  float out[16];
  for (size_t g = g0; g < g1; g++) {
    const int n0 = int(g) * 8, nb = std::min(8, N - n0);
    if (nb < 8) {  // the tail: groups of 4 columns
      small_cols4(0, size_t(nb + 3) / 4, M, nb, K, alpha, A, lda, B + size_t(n0) * ldb, ldb, beta, C + n0, ldc);
      continue;
    }
    const float *b = B + size_t(n0) * ldb;
    // The next group's 8 rows of B are fetched into L2 while this group computes, a slice before each
    // pair of rows of A: left to the hardware, the first pair of every group waited on memory for its
    // 16 KiB (LM head of 32 rows: 40 → 30 ms). Not for one row alone: there the stream is all there is.
    const char *next = reinterpret_cast<const char *>(b + size_t(8) * ldb);
    const size_t next_lines = g + 1 < g1 ? (size_t(8) * ldb * sizeof(float) + 63) / 64 : 0;
    const size_t pairs = size_t(std::max(1, M / 2)), per_pair = (next_lines + pairs - 1) / pairs;
    size_t line = 0;
    int m0 = 0;
    for (; m0 + 2 <= M; m0 += 2) {
      for (const size_t end = std::min(next_lines, line + per_pair); line < end; line++)
        __builtin_prefetch(next + line * 64, 0, 2);
      dot_block<2, 8>(K, A + size_t(m0) * lda, lda, b, ldb, out);
      store(C + size_t(m0) * ldc + n0, ldc, 2, 8, out, 8, alpha, beta);
    }
    if (m0 < M) {
      dot_block<1, 8>(K, A + size_t(m0) * lda, lda, b, ldb, out);
      store(C + size_t(m0) * ldc + n0, ldc, 1, 8, out, 8, alpha, beta);
    }
  }
}

// The same for short K (at most SHORT_K: LoRA B-products, K = rank), 16 columns per group, so that
// every reduction is a full hsum16: 4 × 4 blocks for 4 rows of A, 1 × 16 for each remaining row.
constexpr int SHORT_K = 64;
void small_cols16(size_t g0, size_t g1, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc) {
  float out[16];
  for (size_t g = g0; g < g1; g++) {
    const int n0 = int(g) * 16, nb = std::min(16, N - n0);
    if (nb < 16) {  // the tail: groups of 4 columns
      small_cols4(0, size_t(nb + 3) / 4, M, nb, K, alpha, A, lda, B + size_t(n0) * ldb, ldb, beta, C + n0, ldc);
      continue;
    }
    const float *b = B + size_t(n0) * ldb;
    int m0 = 0;
    for (; m0 + 4 <= M; m0 += 4) {
      const float *a = A + size_t(m0) * lda;
      for (int j0 = 0; j0 < 16; j0 += 4) {
        dot_block<4, 4>(K, a, lda, b + size_t(j0) * ldb, ldb, out);
        store(C + size_t(m0) * ldc + n0 + j0, ldc, 4, 4, out, 4, alpha, beta);
      }
    }
    for (; m0 < M; m0++) {
      dot_block<1, 16>(K, A + size_t(m0) * lda, lda, b, ldb, out);
      store(C + size_t(m0) * ldc + n0, ldc, 1, 16, out, 16, alpha, beta);
    }
  }
}

}  // namespace

// gemm_short.cc: columns [16·g0, 16·g1) of C = alpha·A·Bᵀ + beta·C for K ≤ 64, where the CPU has AVX-512.
bool short_k_avx512();
void short_k_cols(size_t g0, size_t g1, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                  int ldb, float beta, float *C, int ldc);

void sgemm_small(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  const int width = K <= SHORT_K ? 16 : 8;
  const size_t groups = size_t(N + width - 1) / width;
  auto body = [&](size_t g0, size_t g1) {
    if (width == 16 && short_k_avx512()) short_k_cols(g0, g1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (width == 16) small_cols16(g0, g1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else small_cols8(g0, g1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  };
  // At least ~128K multiply-adds per task, so a LoRA product of one row stays on the calling thread
  // (and then skips the pool's dispatch altogether).
  const size_t grain =
      std::max<size_t>(1, (size_t(1) << 17) / (size_t(width) * M * std::max(K, 1)));
  if (groups <= grain || current_threads() <= 1) body(0, groups);
  else parallel_for(groups, grain, body);
}

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

static bool use_small(bool ta, bool tb, int M, int K) { return !ta && tb && M <= SMALL_M && K > 0; }

#ifdef TUFT_HAVE_OPENBLAS
static void blas(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
}

// OpenBLAS runs single-threaded; the pool splits C into one slice per thread, along N (weight rows
// or columns, each packed by one thread only) unless C is taller than wide.
static void sgemm_openblas(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc) {
  const int nt = current_threads();
  if (nt <= 1 || double(M) * N * K < double(1 << 21)) {
    blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const bool split_n = N >= M;
  const int len = split_n ? N : M, align = split_n ? 16 : 8;
  const int step = ((len + nt - 1) / nt + align - 1) / align * align;
  current_pool()->run(nt, [&](int t) {
    const int a = t * step, b = std::min(len, a + step);
    if (a >= b) return;
    if (split_n)
      blas(ta, tb, M, b - a, K, alpha, A, lda, tb ? B + size_t(a) * ldb : B + a, ldb, beta, C + a, ldc);
    else
      blas(ta, tb, b - a, N, K, alpha, ta ? A + a : A + size_t(a) * lda, lda, B, ldb, beta, C + size_t(a) * ldc,
           ldc);
  });
}
void gemm_openblas_single_threaded() { openblas_set_num_threads(1); }
#else
void gemm_openblas_single_threaded() {}
#endif

void sgemm(GemmImpl impl, bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
  if (M <= 0 || N <= 0) return;
  if (use_small(ta, tb, M, K)) sgemm_small(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (sgemm_mid_fits(ta, tb, M, N, K)) sgemm_mid(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (!tb && K > 0 && sgemm_short_k_fits(M, N, K, beta))
    sgemm_short_k(ta, M, N, K, alpha, A, lda, B, ldb, C, ldc);
#ifdef TUFT_HAVE_OPENBLAS
  else if (impl == GEMM_OPENBLAS && K > 0)  // BLAS rejects lda < 1; the built-in path just scales C
    sgemm_openblas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  else sgemm_builtin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace tuft
