// gemm_mid.cc — GEMM against a frozen weight for a few hundred rows (a training call of several short
// data). There the weight is read from memory once per call and the arithmetic barely outlasts the
// read, so a separate packing pass over the whole weight (what a general BLAS does) costs a fifth of
// the time. Here the weight goes through one small panel at a time: each is packed just before use
// while the next one is prefetched, so the memory traffic overlaps the register-tile arithmetic.
//
// Both shapes share one 12 × 32 tile: 12 broadcast rows, packed in 16-wide k chunks ([chunk][12][16],
// so a chunk of every row is one cache line and the rows never alias in L1), times 32 columns of a
// [k][32] panel. Forward (C = X·Wᵀ) broadcasts 12 weight rows against 32 activation rows (X packed
// transposed once per call, shared by the threads); input gradients (C = dY·W) broadcast 12 rows of
// dY against 32 weight columns. Every output sums over k in the same order wherever its row sits,
// so a row's result does not depend on the rows beside it.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/pool.h"
#include "gemm.h"
#include "transpose16.h"

namespace tuft {

#if defined(__AVX512F__)

namespace {

constexpr int MR = 12;   // broadcast rows per tile
constexpr int VW = 32;   // panel columns per tile (two 16-lane vectors)
constexpr int KB = 16;   // k per chunk of the broadcast operand
// Blocks of the input-gradient product's weight: NCB columns (512 B of each row) × up to KC_MAX rows,
// fewer when there are many rows of A, so that the packed block, the packed rows of A for it and the
// next block being prefetched stay within L2 (1 MiB on the machines this was tuned on).
constexpr int NCB = 128, KC_MAX = 512, KC_MIN = 256;
constexpr size_t A_BLOCK_FLOATS = size_t(1) << 16;  // 256 KiB of packed A per k block
constexpr int KCF = 1024;  // k per block of the forward product

inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// Grown on first use, then reused: no allocation (nor page faults) per call.
float *scratch(std::vector<float> &v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
thread_local std::vector<float> tl_panel, tl_rows, tl_shared, tl_parts;

// out[i][j] = Σ_k P[k / KB][i][k % KB] · V[k][j], i < R, j < VW, over kc (a multiple of KB) steps.
// pf(chunk) runs once per chunk, to prefetch what the caller needs next.
template <int R, class Pf>
inline void tile(int kc, const float *P, const float *V, float *out, Pf pf) {
  __m512 c[R][2];
  for (int i = 0; i < R; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
  for (int kb = 0; kb < kc / KB; kb++) {
    pf(kb);
    const float *p = P + size_t(kb) * R * KB, *v = V + size_t(kb) * KB * VW;
    for (int kk = 0; kk < KB; kk++) {
      const __m512 v0 = _mm512_loadu_ps(v + kk * VW), v1 = _mm512_loadu_ps(v + kk * VW + 16);
      for (int i = 0; i < R; i++) {
        const __m512 a = _mm512_set1_ps(p[i * KB + kk]);
        c[i][0] = _mm512_fmadd_ps(a, v0, c[i][0]);
        c[i][1] = _mm512_fmadd_ps(a, v1, c[i][1]);
      }
    }
  }
  for (int i = 0; i < R; i++) {
    _mm512_storeu_ps(out + i * VW, c[i][0]);
    _mm512_storeu_ps(out + i * VW + 16, c[i][1]);
  }
}

// The last tile of an input-gradient product is only as tall as the rows left (4, 8 or 12), so that
// 16 rows (one datum of a LoRA group) or 128 rows waste no arithmetic on padding.
inline int tile_rows(int left) { return left <= 4 ? 4 : left <= 8 ? 8 : MR; }
template <class Pf>
inline void tile_any(int rows, int kc, const float *P, const float *V, float *out, Pf pf) {
  if (rows == 4) tile<4>(kc, P, V, out, pf);
  else if (rows == 8) tile<8>(kc, P, V, out, pf);
  else tile<MR>(kc, P, V, out, pf);
}

inline __mmask16 first(int n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << std::max(n, 0)) - 1); }

// Rows [r0, r0 + R) (those below `rows`) × k [k0, k0 + kcp) of X[rows, ld] in the broadcast layout
// [kcp / KB][R][KB], zero beyond the rows and beyond k < K.
void pack_rows(float *dst, int R, const float *X, size_t ld, int r0, int rows, int k0, int kcp, int K) {
  for (int kb = 0; kb < kcp / KB; kb++)
    for (int i = 0; i < R; i++) {
      const int r = r0 + i, k = k0 + kb * KB;
      __m512 v = r < rows ? _mm512_maskz_loadu_ps(first(K - k), X + size_t(r) * ld + k) : _mm512_setzero_ps();
      _mm512_storeu_ps(dst + (size_t(kb) * R + i) * KB, v);
    }
}

// C[M, N] = alpha · X[M, K] · W[N, K]ᵀ + beta · C.
void mid_nt(int M, int N, int K, float alpha, const float *X, int ldx, const float *W, int ldw, float beta, float *C,
            int ldc) {
  const int Kp = round_up(K, KB), mt = (M + VW - 1) / VW, slivers = (N + MR - 1) / MR;
  // X transposed into [mt][Kp][VW], zero-padded: the column panels of every tile.
  float *xp = scratch(tl_shared, size_t(mt) * Kp * VW);
  // 16 rows × 16 k at a time through a register transpose; one task per tile, so that no two threads
  // write the two halves of one 128-byte panel row.
  parallel_for(size_t(mt), 1, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; t++)
      for (int k0 = 0; k0 < Kp; k0 += 16)
        for (int half = 0; half < 2; half++) {
          const int r0 = int(t) * VW + half * 16;
          __m512 r[16];
          for (int i = 0; i < 16; i++)
            r[i] = r0 + i < M ? _mm512_maskz_loadu_ps(first(K - k0), X + size_t(r0 + i) * ldx + k0)
                              : _mm512_setzero_ps();
          transpose16(r);  // r[kk] = rows r0 … r0 + 15 at k0 + kk
          float *d = xp + (t * size_t(Kp) + k0) * VW + half * 16;
          for (int kk = 0; kk < 16; kk++) _mm512_storeu_ps(d + size_t(kk) * VW, r[kk]);
        }
  });
  const int nt = std::max(1, std::min(current_threads(), slivers));
  auto work = [&](int th) {
    const int s0 = int(size_t(slivers) * th / nt), s1 = int(size_t(slivers) * (th + 1) / nt);
    float *wp = scratch(tl_panel, size_t(std::min(Kp, KCF)) * MR);
    float out[MR * VW];
    // k blocks keep the activation panels read by every sliver ([mt][KCF][VW]) within L2.
    for (int k0 = 0; k0 < Kp; k0 += KCF) {
      const int kcp = std::min(KCF, Kp - k0);
      for (int s = s0; s < s1; s++) {
        const int n0 = s * MR, nr = std::min(MR, N - n0);
        pack_rows(wp, MR, W, size_t(ldw), n0, N, k0, kcp, K);
        // The next sliver's rows, one chunk of each per chunk of the first tile: in cache by the time
        // it is packed, after the remaining tiles of this one.
        const float *next = nullptr;
        int next_rows = 0;
        if (s + 1 < s1) next = W + size_t(n0 + MR) * ldw + k0, next_rows = std::min(MR, N - n0 - MR);
        else if (k0 + KCF < Kp) next = W + size_t(s0) * MR * ldw + k0 + KCF, next_rows = std::min(MR, N - s0 * MR);
        for (int t = 0; t < mt; t++) {
          const float *xt = xp + (size_t(t) * Kp + k0) * VW;
          if (t == 0 && next)
            tile<MR>(kcp, wp, xt, out, [&](int kb) {
              for (int i = 0; i < next_rows; i++)
                _mm_prefetch(reinterpret_cast<const char *>(next + size_t(i) * ldw + kb * KB), _MM_HINT_T1);
            });
          else
            tile<MR>(kcp, wp, xt, out, [](int) {});
          const int m0 = t * VW, mr = std::min(VW, M - m0);
          const float b = k0 > 0 ? 1.f : beta;  // later blocks add to the first; beta == 0 never reads C
          for (int j = 0; j < mr; j++) {
            float *c = C + size_t(m0 + j) * ldc + n0;
            for (int i = 0; i < nr; i++) c[i] = alpha * out[i * VW + j] + (b == 0.f ? 0.f : b * c[i]);
          }
        }
      }
    }
  };
  if (nt <= 1) work(0);
  else current_pool()->run(nt, work);
}

// Issues `total` cache-line prefetches (rows × lines of a block of W) evenly over `calls` calls.
struct Prefetcher {
  const char *base = nullptr;
  size_t ld = 0;  // bytes between rows
  int lines = 0, total = 0, calls = 1, done = 0, call = 0;
  void step() {
    if (!base) return;
    const int upto = int((long(total) * ++call + calls - 1) / calls);
    for (; done < std::min(upto, total); done++)
      _mm_prefetch(base + size_t(done / lines) * ld + size_t(done % lines) * 64, _MM_HINT_T1);
  }
};

// C[M, N] = alpha · A[M, K] · W[K, N] + beta · C, in blocks of KC × NCB of W: each block is read
// row by row (NCB contiguous floats each), packed into NCB / VW panels [KC][VW] that stay in L2 for
// every tile, while the next block is prefetched.
void mid_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *W, int ldw, float beta, float *C,
            int ldc) {
  const int mt = (M + MR - 1) / MR, panels = (N + VW - 1) / VW;
  const int nt = std::max(1, std::min(current_threads(), panels));
  const int KC = std::clamp(int(A_BLOCK_FLOATS / (size_t(mt) * MR)) / KB * KB, KC_MIN, KC_MAX);
  auto work = [&](int th) {
    const int p0 = int(size_t(panels) * th / nt), p1 = int(size_t(panels) * (th + 1) / nt);
    // Every thread packs the whole A block it needs (a few hundred KiB): cheaper than a barrier.
    float *ap = scratch(tl_rows, size_t(mt) * KC * MR);
    float *wp = scratch(tl_panel, size_t(KC) * NCB);
    float out[MR * VW];
    const int bw = NCB / VW;  // panels per block
    struct Block {
      int k0, q0;  // first k, first panel
    };
    auto next_of = [&](Block b) {
      b.q0 += bw;
      if (b.q0 >= p1) b.q0 = p0, b.k0 += KC;
      return b;
    };
    for (Block b{0, p0}; b.k0 < K; b = next_of(b)) {
      const int k0 = b.k0, kc = std::min(KC, K - k0), kcp = round_up(kc, KB);
      const int q1 = std::min(p1, b.q0 + bw), n0 = b.q0 * VW, ncols = std::min(N, q1 * VW) - n0;
      if (b.q0 == p0)
        for (int t = 0; t < mt; t++)
          pack_rows(ap + size_t(t) * kcp * MR, tile_rows(M - t * MR), A, size_t(lda), t * MR, M, k0, kcp, k0 + kc);
      // A weight one panel wide and dense (a LoRA B, [out][32]) already has the panel layout.
      const bool dense = N == VW && ldw == VW && kc == kcp;
      const float *panels_of_block = dense ? W + size_t(k0) * VW : wp;
      for (int k = 0; k < (dense ? 0 : kcp); k++) {
        const float *w = W + size_t(k0 + k) * ldw + n0;
        for (int q = 0; q < q1 - b.q0; q++) {
          const int left = k < kc ? ncols - q * VW : 0;
          float *d = wp + (size_t(q) * kcp + k) * VW;
          _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(first(left), w + q * VW));
          _mm512_storeu_ps(d + 16, _mm512_maskz_loadu_ps(first(left - 16), w + q * VW + 16));
        }
      }
      Prefetcher pf;
      const Block nb = next_of(b);
      if (nb.k0 < K) {
        const int nq1 = std::min(p1, nb.q0 + bw);
        pf.base = reinterpret_cast<const char *>(W + size_t(nb.k0) * ldw + size_t(nb.q0) * VW);
        pf.ld = size_t(ldw) * sizeof(float);
        pf.lines = (std::min(N, nq1 * VW) - nb.q0 * VW + 15) / 16;
        pf.total = std::min(KC, K - nb.k0) * pf.lines;
        pf.calls = (q1 - b.q0) * mt * (kcp / KB);
      }
      for (int q = 0; q < q1 - b.q0; q++) {
        const int c0 = n0 + q * VW, nc = std::min(VW, N - c0);
        const __mmask16 lo = first(nc), hi = first(nc - 16);
        for (int t = 0; t < mt; t++) {
          tile_any(tile_rows(M - t * MR), kcp, ap + size_t(t) * kcp * MR, panels_of_block + size_t(q) * kcp * VW, out,
                   [&](int) { pf.step(); });
          const int m0 = t * MR, mr = std::min(MR, M - m0);
          const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(k0 > 0 ? 1.f : beta);
          for (int i = 0; i < mr; i++) {
            float *c = C + size_t(m0 + i) * ldc + c0;
            __m512 r0 = _mm512_mul_ps(va, _mm512_loadu_ps(out + i * VW));
            __m512 r1 = _mm512_mul_ps(va, _mm512_loadu_ps(out + i * VW + 16));
            if (k0 > 0 || beta != 0.f) {  // later blocks add to the first; beta == 0 never reads C
              r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(lo, c), r0);
              r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(hi, c + 16), r1);
            }
            _mm512_mask_storeu_ps(c, lo, r0);
            _mm512_mask_storeu_ps(c + 16, hi, r1);
          }
        }
      }
    }
  };
  if (nt <= 1) work(0);
  else current_pool()->run(nt, work);
}

// C[M, N] += alpha · op(A)[M, K] · B[K, N] for K ≤ 64 and M ≤ 64, op(A) = A[K, M]ᵀ (ta) or A[M, K]:
// LoRA's dA += tᵀ·x and dx += t·A over one group's rows, on the calling thread. The broadcast operand
// is op(A)'s rows: with ta, 16 rows of A × 16 columns transposed in registers give 16 of them; B's
// rows are copied into zero-padded [Kp][32] panels, so no k or column tail is read past the operands.
// (dB += s·dyᵀ·u, the long-A shape, gained nothing this way over the general path.)
void short_k(bool ta, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float *C,
             int ldc) {
  const int Kp = round_up(K, KB), panels = (N + VW - 1) / VW;
  const size_t half = size_t(Kp / KB) * 8 * KB;
  // P for rows [i0, i0 + 16) of op(A): two [Kp / KB][8][KB] halves.
  auto build_p = [&](int i0, float *p) {
    if (!ta) {
      pack_rows(p, 8, A, size_t(lda), i0, M, 0, Kp, K);
      pack_rows(p + half, 8, A, size_t(lda), i0 + 8, M, 0, Kp, K);
      return;
    }
    for (int k0 = 0; k0 < Kp; k0 += KB) {
      __m512 r[16];
      for (int k = 0; k < 16; k++)
        r[k] = k0 + k < K ? _mm512_maskz_loadu_ps(first(M - i0), A + size_t(k0 + k) * lda + i0) : _mm512_setzero_ps();
      transpose16(r);  // r[i] = A[k0 …][i0 + i]
      for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(p + (size_t(i / 8) * (Kp / KB) + k0 / KB) * 8 * KB + size_t(i % 8) * KB, r[i]);
    }
  };
  auto copy_v = [&](int q, float *v) {
    const int j0 = q * VW, nc = std::min(VW, N - j0);
    for (int k = 0; k < Kp; k++) {
      const float *b = B + size_t(k) * ldb + j0;
      const bool in = k < K;
      _mm512_storeu_ps(v + k * VW, in ? _mm512_maskz_loadu_ps(first(nc), b) : _mm512_setzero_ps());
      _mm512_storeu_ps(v + k * VW + 16, in ? _mm512_maskz_loadu_ps(first(nc - 16), b + 16) : _mm512_setzero_ps());
    }
  };
  auto update = [&](int i0, int rows, int q, const float *out) {
    const int j0 = q * VW, nc = std::min(VW, N - j0);
    const __mmask16 lo = first(nc), hi = first(nc - 16);
    const __m512 va = _mm512_set1_ps(alpha);
    for (int i = 0; i < std::min(rows, M - i0); i++) {
      float *c = C + size_t(i0 + i) * ldc + j0;
      _mm512_mask_storeu_ps(c, lo, _mm512_fmadd_ps(va, _mm512_loadu_ps(out + i * VW), _mm512_maskz_loadu_ps(lo, c)));
      _mm512_mask_storeu_ps(c + 16, hi,
                            _mm512_fmadd_ps(va, _mm512_loadu_ps(out + i * VW + 16), _mm512_maskz_loadu_ps(hi, c + 16)));
    }
  };
  float out[8 * VW];
  auto tiles = [&](int i0, const float *p, int q, const float *v) {
    tile<8>(Kp, p, v, out, [](int) {});
    update(i0, 8, q, out);
    if (i0 + 8 < M) {
      tile<8>(Kp, p + half, v, out, [](int) {});
      update(i0 + 8, 8, q, out);
    }
  };
  // Every P once (M ≤ 64: A is t, a rank of columns), then B (x, long) one panel at a time.
  alignas(64) float p[4 * 2 * 64 * 8], v[64 * VW];
  for (int i0 = 0; i0 < M; i0 += 16) build_p(i0, p + size_t(i0 / 16) * 2 * half);
  for (int q = 0; q < panels; q++) {
    copy_v(q, v);
    for (int i0 = 0; i0 < M; i0 += 16) tiles(i0, p + size_t(i0 / 16) * 2 * half, q, v);
  }
}

}  // namespace

bool sgemm_mid_fits(bool ta, bool tb, int M, int N, int K) {
  if (ta) return false;
  if (M > SMALL_M && N >= 256 && K >= 256) return true;
  // LoRA's t = dy·B (N = rank, B one dense panel wide): below 2048 rows of B the general path is as fast.
  return !tb && N <= VW && K >= 2048;
}

bool sgemm_short_k_fits(int M, int N, int K, float beta) {
  // A small product, or a call from inside a task (one group per thread): the general path would not
  // split it over threads either.
  return beta == 1.f && K <= 64 && M <= 64 && N > 2 * VW &&
         (current_threads() == 1 || double(M) * N * K < double(1 << 21));
}

void sgemm_short_k(bool trans_a, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc) {
  short_k(trans_a, M, N, K, alpha, A, lda, B, ldb, C, ldc);
}

namespace {

// More rows than MID_M (a training call of long data, a prefill): blocks of equal height, a multiple
// of the forward tile's VW rows, one after another. Each re-reads the weight, which a block of a few
// hundred rows repays many times over, while its packed rows stay within L2; a row's result does
// not depend on the block it falls in.
void in_row_blocks(bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc) {
  const int blocks = (M + MID_M - 1) / MID_M, rows = round_up((M + blocks - 1) / blocks, VW);
  for (int m0 = 0; m0 < M; m0 += rows) {
    const int mb = std::min(rows, M - m0);
    const float *a = A + size_t(m0) * lda;
    float *c = C + size_t(m0) * ldc;
    if (tb) mid_nt(mb, N, K, alpha, a, lda, B, ldb, beta, c, ldc);
    else mid_nn(mb, N, K, alpha, a, lda, B, ldb, beta, c, ldc);
  }
}

// C = alpha · A·B + beta · C for B one panel wide (LoRA's t = dy·B, K the layer's outputs or the
// vocabulary): the panels would give one thread all the work, so each thread takes a range of K
// (whole chunks) into its own partial product, and the partials are summed in thread order.
void split_k(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta,
             float *C, int ldc) {
  const int nt = current_threads(), chunks = (K + KB - 1) / KB;
  float *part = scratch(tl_parts, size_t(nt) * M * N);  // the caller's: its task uses only tl_rows, tl_panel
  current_pool()->run(nt, [&](int t) {
    const int k0 = std::min(K, chunks * t / nt * KB), k1 = std::min(K, chunks * (t + 1) / nt * KB);
    float *p = part + size_t(t) * M * N;
    if (k0 < k1) in_row_blocks(false, M, N, k1 - k0, 1.f, A + k0, lda, B + size_t(k0) * ldb, ldb, 0.f, p, N);
    else std::fill(p, p + size_t(M) * N, 0.f);
  });
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = 0;
      for (int t = 0; t < nt; t++) s += part[(size_t(t) * M + i) * N + j];
      float &c = C[size_t(i) * ldc + j];
      c = alpha * s + (beta == 0.f ? 0.f : beta * c);  // beta == 0 never reads C
    }
}

}  // namespace

void sgemm_mid(bool tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc) {
  if (!tb && N <= VW && current_threads() > 1) split_k(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else in_row_blocks(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#else  // no AVX-512: the general path serves every shape

bool sgemm_mid_fits(bool, bool, int, int, int) { return false; }
bool sgemm_short_k_fits(int, int, int, float) { return false; }
void sgemm_short_k(bool, int, int, int, float, const float *, int, const float *, int, float *, int) {}
void sgemm_mid(bool, int, int, int, float, const float *, int, const float *, int, float, float *, int) {}

#endif

}  // namespace tuft
