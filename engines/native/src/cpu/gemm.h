// gemm.h — the one matrix multiply every CPU op uses (row-major, BLAS argument order):
//   C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C,   op(X) = X or Xᵀ.
// Small, mid-sized and short-K shapes take the kernels below whichever general GEMM is chosen; the
// rest goes to OpenBLAS (GEMM_OPENBLAS, built when found: TUFT_HAVE_OPENBLAS) or to the built-in
// cache-blocked kernel (GEMM_BUILTIN, always built). The two CPU backends differ only in that choice.
#pragma once

namespace tuft {

enum GemmImpl { GEMM_BUILTIN, GEMM_OPENBLAS };
#ifdef TUFT_HAVE_OPENBLAS
constexpr bool HAVE_OPENBLAS = true;
#else
constexpr bool HAVE_OPENBLAS = false;
#endif

// Runs on the current pool; GEMM_OPENBLAS only where HAVE_OPENBLAS.
void sgemm(GemmImpl impl, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc);
void sgemm_builtin(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
// Rows at or below which C = A·Bᵀ takes sgemm_small (B streamed once, never packed): up to 32 rows it
// beats packing B for OpenBLAS (a decode step of 32 sequences: ~10% on the GEMMs).
constexpr int SMALL_M = 32;
// C[M, N] = alpha · A[M, K] · B[N, K]ᵀ + beta · C for small M, on the current pool; always compiled.
void sgemm_small(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                 float *C, int ldc);
// Rows above SMALL_M against a weight of at least 256 × 256 (a training call, a prefill) take sgemm_mid
// where the CPU has AVX-512: the weight streams through small panels packed just before use while the
// next is prefetched (gemm_mid.cc), instead of a packing pass of its own; rows beyond MID_M go in
// blocks of at most MID_M rows. So does LoRA's t = dy·B (rank columns, at least 2048 rows of B), split
// along K over the pool's threads when the caller is not a pool task.
constexpr int MID_M = 512;
bool sgemm_mid_fits(bool trans_a, bool trans_b, int M, int N, int K);
// C[M, N] = alpha · A[M, K] · op(B) + beta · C, op(B) = B[N, K]ᵀ (trans_b) or B[K, N]; on the current pool.
void sgemm_mid(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc);
// C[M, N] += alpha · op(A)[M, K] · B[K, N] for K ≤ 64 and M ≤ 64, op(A) = Aᵀ (trans_a) or A: LoRA's
// dA += tᵀ·x and dx += t·A over one group's rows, on the calling thread, where the CPU has AVX-512 and
// the general path would not split it either.
bool sgemm_short_k_fits(int M, int N, int K, float beta);
void sgemm_short_k(bool trans_a, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc);
// OpenBLAS is kept single-threaded: the pool splits its work (called when a backend that uses it is created).
void gemm_openblas_single_threaded();

}  // namespace tuft
