// test_ops.cc — every op of the CPU backend's table against finite differences (central, fp32 with
// tolerances sized for it), both general GEMMs and the special-shape kernels against a naive product for
// all transpose cases and odd shapes, the losses' d loss / d logprob, and the whole LoRA model's
// gradient against finite differences of its loss. (test_backend_ops compares backends with each other.)
#include <array>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <random>

#include "backend/registry.h"
#include "common/pool.h"
#include "cpu/gemm.h"
#include "loss/loss.h"
#include "model/engine_impl.h"
#include "sample/choose.h"
#include "test_util.h"

using namespace tuft;

namespace {

// The CPU backend: its memory is host memory, so the ops run on the vectors below in place.
Backend *g_be = nullptr;
constexpr GemmImpl BEST_GEMM = HAVE_OPENBLAS ? GEMM_OPENBLAS : GEMM_BUILTIN;

std::mt19937 rng(1234);
std::vector<float> randn(size_t n, float s = 1.f) {
  std::normal_distribution<float> nd(0.f, s);
  std::vector<float> v(n);
  for (auto &x : v) x = nd(rng);
  return v;
}
double dotd(const std::vector<float> &a, const std::vector<float> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * b[i];
  return s;
}

// Checks grad (analytic d f / d x) against central differences of f at every element of x.
void fd_check(std::vector<float> &x, const std::vector<float> &grad, const std::function<double()> &f,
              const std::string &what, float eps = 1e-2f, double tol = 2e-3) {
  double worst = 0, scale = 1e-3;
  for (float g : grad) scale = std::max(scale, double(std::fabs(g)));
  for (size_t i = 0; i < x.size(); i++) {
    float x0 = x[i];
    x[i] = x0 + eps;
    double fp = f();
    x[i] = x0 - eps;
    double fm = f();
    x[i] = x0;
    worst = std::max(worst, std::fabs((fp - fm) / (2.0 * eps) - grad[i]) / scale);
  }
  tt::near(worst, 0, tol, 0, what + " vs finite differences (max error / max |grad|)");
}

void test_gemm() {
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      const int M = 37, N = 53, K = 300;  // odd sizes, K over one KC block
      int lda = ta ? M + 3 : K + 2, ldb = tb ? K + 1 : N + 5, ldc = N + 7;
      auto A = randn(size_t(ta ? K : M) * lda), B = randn(size_t(tb ? N : K) * ldb), C = randn(size_t(M) * ldc);
      std::vector<float> ref = C, got = C, blas = C;
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          double s = 0;
          for (int k = 0; k < K; k++)
            s += double(ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k]) *
                 (tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j]);
          ref[size_t(i) * ldc + j] = float(0.5 * s + 0.25 * C[size_t(i) * ldc + j]);
        }
      sgemm_builtin(ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.25f, got.data(), ldc);
      sgemm(BEST_GEMM, ta, tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 0.25f, blas.data(), ldc);
      double e1 = 0, e2 = 0;
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          size_t p = size_t(i) * ldc + j;
          e1 = std::max(e1, double(std::fabs(got[p] - ref[p])));
          e2 = std::max(e2, double(std::fabs(blas[p] - ref[p])));
        }
      std::string s = std::string("gemm ta=") + char('0' + ta) + " tb=" + char('0' + tb);
      tt::near(e1, 0, 1e-3, 0, s + " builtin");
      tt::near(e2, 0, 1e-3, 0, s + (HAVE_OPENBLAS ? " openblas" : " builtin"));
    }
  // The small-M streaming kernel (C = A·Bᵀ): row and column tails, K off the vector width, short K (16-column
  // groups, LoRA B-products), long K (beyond what 8 rows of B keep in L1: 1100), beta 0 and 1.
  for (int M : {1, 3, 4, 7, 16, 32})
    for (int K : {5, 16, 32, 300, 1100}) {
      const int N = 37, lda = K + 3, ldb = K + 1, ldc = N + 2;
      auto A = randn(size_t(M) * lda), B = randn(size_t(N) * ldb), C = randn(size_t(M) * ldc);
      for (float beta : {0.f, 1.f}) {
        std::vector<float> got = C;
        if (beta == 0.f)
          for (int i = 0; i < M; i++) got[size_t(i) * ldc] = NAN;
        sgemm_small(M, N, K, 0.5f, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
        double err = 0;
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[size_t(i) * lda + k]) * B[size_t(j) * ldb + k];
            double ref = 0.5 * s + beta * C[size_t(i) * ldc + j];
            err = std::max(err, std::fabs(got[size_t(i) * ldc + j] - ref));
          }
        tt::near(err, 0, 1e-3, 0, "gemm small M=" + std::to_string(M) + " K=" + std::to_string(K));
      }
    }
  // A row's result does not depend on the rows beside it (a sequence samples the same batched or alone).
  for (int K : {16, 300, 1100}) {
    const int M = 7, N = 37;
    auto A = randn(size_t(M) * K), B = randn(size_t(N) * K);
    std::vector<float> all(size_t(M) * N), alone(static_cast<size_t>(N));
    sgemm_small(M, N, K, 1.f, A.data(), K, B.data(), K, 0.f, all.data(), N);
    bool same = true;
    for (int i = 0; i < M; i++) {
      sgemm_small(1, N, K, 1.f, A.data() + size_t(i) * K, K, B.data(), K, 0.f, alone.data(), N);
      same = same && std::equal(alone.begin(), alone.end(), all.begin() + size_t(i) * N);
    }
    tt::check(same, "gemm small: rows alone equal rows batched, bit for bit (K=" + std::to_string(K) + ")");
  }
  // The mid-M kernel (a few hundred rows against a weight): both weight layouts, tails of every block
  // (rows: 4- and 8-row last tiles, 12-row slivers, 32-column panels, k chunks and k blocks), beta 0 over
  // NaN and beta 1.
  // Its own generator, so that the tests after it draw the same numbers with or without it.
  std::mt19937 mid_rng(99);
  auto mid_randn = [&](size_t n) {
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> v(n);
    for (auto &x : v) x = nd(mid_rng);
    return v;
  };
  if (sgemm_mid_fits(false, true, 45, 300, 1100))
    for (int tb = 0; tb < 2; tb++)
      for (int K : {261, 1100})
        for (float beta : {0.f, 1.f}) {
          const int M = tb ? 45 : 40 + 4 * (K & 1), N = 300, lda = K + 3, ldb = tb ? K + 1 : N + 5, ldc = N + 2;
          auto A = mid_randn(size_t(M) * lda), B = mid_randn(size_t(tb ? N : K) * ldb), C = mid_randn(size_t(M) * ldc);
          std::vector<float> got = C;
          if (beta == 0.f)
            for (int i = 0; i < M; i++) got[size_t(i) * ldc + i] = NAN;
          sgemm_mid(tb, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
          double err = 0;
          for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
              double s = 0;
              for (int k = 0; k < K; k++)
                s += double(A[size_t(i) * lda + k]) * (tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j]);
              err = std::max(err, std::fabs(got[size_t(i) * ldc + j] - (0.5 * s + beta * C[size_t(i) * ldc + j])));
            }
          std::string s = std::string("gemm mid tb=") + char('0' + tb) + " M=" + std::to_string(M) + " K=" + std::to_string(K);
          tt::near(err, 0, 2e-3, 0, s + (beta == 0.f ? " beta=0" : " beta=1"));
          // Rows 5..37 computed as a batch of 33 equal themselves in the batch of 45, bit for bit.
          std::vector<float> part(size_t(33) * ldc);
          sgemm_mid(tb, 33, N, K, 0.5f, A.data() + size_t(5) * lda, lda, B.data(), ldb, 0.f, part.data(), ldc);
          bool same = true;
          if (beta == 0.f)
            for (int i = 0; i < 33; i++)
              same = same && std::equal(part.begin() + size_t(i) * ldc, part.begin() + size_t(i) * ldc + N,
                                        got.begin() + size_t(i + 5) * ldc);
          tt::check(same, s + ": rows in a smaller batch equal themselves, bit for bit");
        }
  // More rows than MID_M: blocks of rows (3 here, the last shorter), each against the whole weight;
  // forward rows equal themselves computed in a batch of 45, bit for bit, wherever their block starts.
  if (sgemm_mid_fits(false, true, 45, 300, 1100))
    for (int tb = 0; tb < 2; tb++) {
      const int M = 2 * MID_M + 76, N = 260, K = 270, lda = K + 1, ldb = tb ? K : N + 3, ldc = N;
      auto A = mid_randn(size_t(M) * lda), B = mid_randn(size_t(tb ? N : K) * ldb);
      std::vector<float> got(size_t(M) * ldc, NAN);
      sgemm_mid(tb, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, got.data(), ldc);
      double err = 0;
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          double s = 0;
          for (int k = 0; k < K; k++)
            s += double(A[size_t(i) * lda + k]) * (tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j]);
          err = std::max(err, std::fabs(got[size_t(i) * ldc + j] - s));
        }
      const std::string s = std::string("gemm mid tb=") + char('0' + tb) + " M=" + std::to_string(M);
      tt::near(err, 0, 2e-3, 0, s + " (row blocks)");
      if (!tb) continue;
      const int r0 = MID_M - 20;  // across the first block boundary
      std::vector<float> part(size_t(45) * ldc);
      sgemm_mid(tb, 45, N, K, 1.f, A.data() + size_t(r0) * lda, lda, B.data(), ldb, 0.f, part.data(), ldc);
      tt::check(std::equal(part.begin(), part.end(), got.begin() + size_t(r0) * ldc),
                s + ": rows across a block boundary equal themselves in a batch of 45, bit for bit");
    }
  // LoRA's t = dy·B through it: 16 rows (a 12- and a 4-row tile), B one dense panel [K][32] read in
  // place, and a K off the chunk size (the last block packed).
  for (int K : {2048, 2050}) {
    if (!sgemm_mid_fits(false, true, 45, 300, 1100)) break;  // no AVX-512: no mid kernel
    const int M = 16, N = 32, lda = K + 5;
    auto A = mid_randn(size_t(M) * lda), B = mid_randn(size_t(K) * N);
    std::vector<float> got(size_t(M) * N, NAN);
    sgemm_mid(false, M, N, K, 0.5f, A.data(), lda, B.data(), N, 0.f, got.data(), N);
    double err = 0;
    for (int i = 0; i < M; i++)
      for (int j = 0; j < N; j++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += double(A[size_t(i) * lda + k]) * B[size_t(k) * N + j];
        err = std::max(err, std::fabs(got[size_t(i) * N + j] - 0.5 * s));
      }
    tt::near(err, 0, 2e-3, 0, "gemm mid, one dense panel, K=" + std::to_string(K));
  }
  // LoRA's gradients over a group's rows through sgemm, C += alpha · op(A)·B with K ≤ 64: dA += tᵀ·x
  // (long B: the short-K kernel), dB += s·dyᵀ·u (long A: the general path), dx += t·A (op(A) = A, long
  // B: the short-K kernel); k and column tails.
  for (int shape = 0; shape < 3; shape++)
    for (int K : {5, 16, 37}) {
      const bool ta = shape < 2;
      const int M = shape == 1 ? 300 : 45, N = shape == 1 ? 40 : 300, lda = ta ? M + 3 : K + 3, ldb = N + 1,
                ldc = N + 2;
      auto A = mid_randn(size_t(ta ? K : M) * lda), B = mid_randn(size_t(K) * ldb), C = mid_randn(size_t(M) * ldc);
      std::vector<float> got = C;
      sgemm(BEST_GEMM, ta, false, M, N, K, 0.5f, A.data(), lda, B.data(), ldb, 1.f, got.data(), ldc);
      double err = 0;
      for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
          double s = 0;
          for (int k = 0; k < K; k++)
            s += double(ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k]) * B[size_t(k) * ldb + j];
          err = std::max(err, std::fabs(got[size_t(i) * ldc + j] - (0.5 * s + C[size_t(i) * ldc + j])));
        }
      const char *name[] = {" (Aᵀ, long B)", " (Aᵀ, long A)", " (A, long B)"};
      tt::near(err, 0, 1e-3, 0, "gemm short K=" + std::to_string(K) + name[shape]);
    }
  // beta = 0 must ignore NaN in C.
  std::vector<float> A = randn(4 * 3), B = randn(3 * 5), C(4 * 5, NAN);
  sgemm_builtin(false, false, 4, 5, 3, 1.f, A.data(), 3, B.data(), 5, 0.f, C.data(), 5);
  tt::check(std::all_of(C.begin(), C.end(), [](float v) { return std::isfinite(v); }), "gemm beta=0 ignores C");
}

void test_rmsnorm() {
  const int N = 3, G = 2, D = 8, ld = G * D + 3;
  auto x = randn(size_t(N) * ld), w = randn(D), dy = randn(size_t(N) * ld);
  std::vector<float> out(size_t(N) * ld), rstd(size_t(N) * G), dx(size_t(N) * ld, 0.f);
  auto f = [&] {
    g_be->op->rmsnorm_forward(*g_be, out.data(), ld, rstd.data(), x.data(), ld, w.data(), N, G, D, 1e-6f);
    double s = 0;
    for (int n = 0; n < N; n++)
      for (int i = 0; i < G * D; i++) s += double(out[size_t(n) * ld + i]) * dy[size_t(n) * ld + i];
    return s;
  };
  f();
  g_be->op->rmsnorm_backward(*g_be, dx.data(), ld, dy.data(), ld, x.data(), ld, w.data(), rstd.data(), N, G, D);
  fd_check(x, dx, f, "rmsnorm dx");
}

void test_rope() {
  Config c;
  c.HD = 8, c.rope_theta = 10000;
  RopeTable t;
  tt::ok_status(rope_table_init(&t, c, 16), "rope table");
  const int N = 4, H = 3, HD = 8;
  std::vector<int32_t> pos = {0, 5, 2, 15};
  auto x = randn(size_t(N) * H * HD), y = randn(size_t(N) * H * HD);
  std::vector<float> rx = x, ry = y;
  const float *cs = t.cos.data(), *sn = t.sin.data();
  g_be->op->rope_forward(*g_be, rx.data(), H * HD, pos.data(), cs, sn, N, H, HD);
  g_be->op->rope_backward(*g_be, ry.data(), H * HD, pos.data(), cs, sn, N, H, HD);
  tt::near(dotd(rx, y), dotd(x, ry), 1e-4, 1e-5, "rope backward is the adjoint of forward");
  tt::near(dotd(rx, rx), dotd(x, x), 1e-3, 1e-5, "rope preserves norms");
  std::vector<float> p0 = x;
  std::vector<int32_t> zero(N, 0);
  g_be->op->rope_forward(*g_be, p0.data(), H * HD, zero.data(), cs, sn, N, H, HD);
  tt::near(dotd(p0, y), dotd(x, y), 1e-6, 1e-6, "rope at position 0 is the identity");
}

void test_attention() {
  const int NH = 4, NKV = 2, HD = 8, Q = NH * HD, KV = NKV * HD;
  std::vector<Span> spans = {{0, 5}, {5, 3}};
  const int N = 8;
  auto q = randn(size_t(N) * Q), k = randn(size_t(N) * KV), v = randn(size_t(N) * KV), dy = randn(size_t(N) * Q);
  std::vector<float> out(size_t(N) * Q), lse(size_t(N) * NH), dq(q.size()), dk(k.size()), dv(v.size()),
      scratch(2 * size_t(N) * Q);
  auto f = [&] {
    g_be->op->attention_forward(*g_be, out.data(), Q, lse.data(), q.data(), Q, k.data(), KV, v.data(), KV, spans.data(),
                                2, NH, NKV, HD);
    return dotd(out, dy);
  };
  f();
  g_be->op->attention_backward(*g_be, dq.data(), Q, dk.data(), KV, dv.data(), KV, scratch.data(), dy.data(), Q,
                               out.data(), Q, lse.data(), q.data(), Q, k.data(), KV, v.data(), KV, spans.data(), 2, NH,
                               NKV, HD, N);
  fd_check(q, dq, f, "attention dq");
  fd_check(k, dk, f, "attention dk");
  fd_check(v, dv, f, "attention dv");
  // Causality and item isolation: changing the last item's tokens leaves the first item unchanged.
  std::vector<float> before(out.begin(), out.begin() + 5 * Q);
  k[size_t(6) * KV] += 1.f;
  f();
  tt::check(std::equal(before.begin(), before.end(), out.begin()), "attention: items do not see each other");
}

// The sampler's attention over the KV cache equals training's attention bit for bit, row by row (a
// sampled token's log-probability is the one training computes): 45 rows (tiles of 8 and groups of
// 16 keys with tails); head sizes with a tail past their 16-float chunks (the scalar path) and of whole
// chunks (the transposing path where the CPU has AVX-512), query heads per KV head 2 and 8 (two passes).
void test_kv_attention_matches_training(int NH, int NKV, int HD) {
  const int Q = NH * HD, KV = NKV * HD, T = 45;
  auto q = randn(size_t(T) * Q), k = randn(size_t(T) * KV), v = randn(size_t(T) * KV);
  std::vector<float> out(size_t(T) * Q), lse(size_t(T) * NH), cached(size_t(T) * Q);
  std::vector<Span> span = {{0, T}};
  g_be->op->attention_forward(*g_be, out.data(), Q, lse.data(), q.data(), Q, k.data(), KV, v.data(), KV, span.data(),
                              1, NH, NKV, HD);
  const int blocks = (T + KV_BLOCK - 1) / KV_BLOCK;
  std::vector<float> cache(size_t(blocks) * KV_BLOCK * 2 * KV);
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  for (int b = 0; b < blocks; b++) table[size_t(b)] = blocks - 1 - b;  // scattered
  std::vector<CacheRow> rows;
  for (int t = 0; t < T; t++) rows.push_back({table.data(), t});
  g_be->op->kv_write(*g_be, {cache.data(), 1, KV}, k.data(), KV, v.data(), KV, rows.data(), T, 0);
  g_be->op->kv_attention(*g_be, cached.data(), Q, q.data(), Q, {cache.data(), 1, KV}, rows.data(), T, 0, NH, NKV, HD);
  tt::check(cached == out, "kv_attention equals attention_forward bit for bit (NH " + std::to_string(NH) + ", NKV " +
                               std::to_string(NKV) + ", HD " + std::to_string(HD) + ")");
}

// The blocked backward over spans longer than its chunks (64 query rows, 256 keys) and a head size
// off its 16-float tiles, against the textbook formulas in double.
void test_attention_backward_blocks() {
  const int NH = 4, NKV = 2, HD = 40, Q = NH * HD, KV = NKV * HD, group = NH / NKV;
  std::vector<Span> spans = {{0, 300}, {300, 70}};
  const int N = 370;
  auto q = randn(size_t(N) * Q), k = randn(size_t(N) * KV), v = randn(size_t(N) * KV), dy = randn(size_t(N) * Q);
  std::vector<float> out(size_t(N) * Q), lse(size_t(N) * NH), dq(q.size()), dk(k.size()), dv(v.size()),
      scratch(2 * size_t(N) * Q);
  g_be->op->attention_forward(*g_be, out.data(), Q, lse.data(), q.data(), Q, k.data(), KV, v.data(), KV, spans.data(),
                              2, NH, NKV, HD);
  g_be->op->attention_backward(*g_be, dq.data(), Q, dk.data(), KV, dv.data(), KV, scratch.data(), dy.data(), Q,
                               out.data(), Q, lse.data(), q.data(), Q, k.data(), KV, v.data(), KV, spans.data(), 2, NH,
                               NKV, HD, N);
  std::vector<double> rq(q.size()), rk(k.size()), rv(v.size());
  const double scale = 1 / std::sqrt(double(HD));
  for (const Span &sp : spans)
    for (int h = 0; h < NH; h++) {
      const int kvh = h / group;
      for (int i = 0; i < sp.T; i++) {
        const size_t n = size_t(sp.row0 + i);
        const float *qi = &q[n * Q + size_t(h) * HD], *dyi = &dy[n * Q + size_t(h) * HD];
        std::vector<double> s(size_t(i) + 1), dp(size_t(i) + 1);
        double mx = -1e300, sum = 0, D = 0;
        for (int j = 0; j <= i; j++) {
          const size_t m = size_t(sp.row0 + j);
          for (int d = 0; d < HD; d++) {
            s[size_t(j)] += scale * qi[d] * k[m * KV + size_t(kvh) * HD + size_t(d)];
            dp[size_t(j)] += double(dyi[d]) * v[m * KV + size_t(kvh) * HD + size_t(d)];
          }
          mx = std::max(mx, s[size_t(j)]);
        }
        for (int j = 0; j <= i; j++) sum += std::exp(s[size_t(j)] - mx);
        for (int j = 0; j <= i; j++) D += std::exp(s[size_t(j)] - mx) / sum * dp[size_t(j)];
        for (int j = 0; j <= i; j++) {
          const size_t m = size_t(sp.row0 + j);
          const double p = std::exp(s[size_t(j)] - mx) / sum, ds = p * (dp[size_t(j)] - D) * scale;
          for (int d = 0; d < HD; d++) {
            rq[n * Q + size_t(h) * HD + size_t(d)] += ds * k[m * KV + size_t(kvh) * HD + size_t(d)];
            rk[m * KV + size_t(kvh) * HD + size_t(d)] += ds * qi[d];
            rv[m * KV + size_t(kvh) * HD + size_t(d)] += p * dyi[d];
          }
        }
      }
    }
  auto err = [](const std::vector<float> &got, const std::vector<double> &want) {
    double e = 0;
    for (size_t i = 0; i < got.size(); i++) e = std::max(e, std::fabs(got[i] - want[i]));
    return e;
  };
  tt::near(err(dq, rq), 0, 1e-4, 0, "attention backward in blocks: dq (spans of 300 and 70, HD 40)");
  tt::near(err(dk, rk), 0, 1e-4, 0, "attention backward in blocks: dk");
  tt::near(err(dv, rv), 0, 1e-4, 0, "attention backward in blocks: dv");
}

void test_swiglu() {
  const int N = 3, FF = 6;
  auto gu = randn(size_t(N) * 2 * FF), dy = randn(size_t(N) * FF);
  std::vector<float> h(size_t(N) * FF), dgu(gu.size());
  auto f = [&] {
    g_be->op->swiglu_forward(*g_be, h.data(), gu.data(), N, FF);
    return dotd(h, dy);
  };
  f();
  g_be->op->swiglu_backward(*g_be, dgu.data(), dy.data(), gu.data(), N, FF);
  fd_check(gu, dgu, f, "swiglu dgu");
}

void test_linear_lora() {
  const int N = 7, in = 6, out = 5, R = 3, ldy = out + 2;
  auto x = randn(size_t(N) * in), W = randn(size_t(out) * in), b = randn(out), A = randn(size_t(R) * in),
       B = randn(size_t(out) * R), dy = randn(size_t(N) * ldy);
  std::vector<float> y(size_t(N) * ldy), u(size_t(N) * R), t(size_t(N) * R), dx(x.size()), dA(A.size(), 0.f),
      dB(B.size(), 0.f);
  // Rows 0..2 use the adapter, rows 3..4 none, rows 5..6 the adapter again.
  std::vector<LoraGroup> gs = {{0, 3, R, 1.5f, A.data(), B.data(), dA.data(), dB.data()},
                               {5, 2, R, 1.5f, A.data(), B.data(), dA.data(), dB.data()}};
  auto f = [&] {
    g_be->op->linear_forward(*g_be, y.data(), ldy, x.data(), in, W.data(), b.data(), N, in, out);
    g_be->op->lora_forward(*g_be, y.data(), ldy, u.data(), R, x.data(), in, gs.data(), 2, in, out);
    double s = 0;
    for (int n = 0; n < N; n++)
      for (int o = 0; o < out; o++) s += double(y[size_t(n) * ldy + o]) * dy[size_t(n) * ldy + o];
    return s;
  };
  f();
  g_be->op->linear_backward(*g_be, dx.data(), in, dy.data(), ldy, W.data(), N, in, out, 0.f);
  g_be->op->lora_backward(*g_be, dx.data(), in, t.data(), dy.data(), ldy, x.data(), in, u.data(), R, gs.data(), 2, in,
                          out);
  fd_check(x, dx, f, "linear+lora dx");
  fd_check(A, dA, f, "lora dA");
  fd_check(B, dB, f, "lora dB");
}

// head_loss with cross-entropy terms of weight −g: the loss is Σ g·logp, so its d/d logits is the
// log-softmax gather's backward. V = 37: a full 16-lane block and a tail.
void test_head_loss() {
  const int n = 3, V = 37, K = 2;
  // Its own generator, so that the tests after it draw the same numbers as before it existed.
  std::mt19937 own(7);
  auto draw = [&](size_t m, float sd) {
    std::normal_distribution<float> nd(0.f, sd);
    std::vector<float> v(m);
    for (auto &x : v) x = nd(own);
    return v;
  };
  auto z = draw(size_t(n) * V, 2.f), g = draw(size_t(n) * K, 1.f);
  const std::vector<int32_t> tg = {1, 4, 0, 36, 7, 7};
  std::vector<LossTerm> terms(size_t(n) * K);
  for (size_t i = 0; i < terms.size(); i++) terms[i] = {tg[i], TE_LOSS_CROSS_ENTROPY, -g[i], 0, 0, 0, 0, 0};
  std::vector<float> logp(size_t(n) * K);
  std::vector<double> loss(size_t(n) * K);
  auto f = [&] {
    std::vector<float> zz = z;
    g_be->op->head_loss(*g_be, logp.data(), loss.data(), zz.data(), terms.data(), n, V, K, false);
    double s = 0;
    for (double l : loss) s += l;
    tt::near(s, dotd(logp, g), 1e-9, 1e-6, "head_loss: cross-entropy terms sum to Σ w·(−logp)");
    return s;
  };
  f();
  std::vector<float> dz = z;
  g_be->op->head_loss(*g_be, logp.data(), loss.data(), dz.data(), terms.data(), n, V, K, true);
  fd_check(z, dz, f, "head_loss dlogits");
}

void test_losses() {
  const int T = 6;
  std::vector<float> q = {-1.f, -2.f, -0.5f, -3.f, -1.2f, -0.1f}, adv = {1.f, -0.5f, 2.f, -1.f, 0.3f, 0.f},
                     w = {1.f, 0.f, -0.5f, 2.f, 1.f, 0.3f}, lo = {0.5f, 0.9f, 0.7f, 0.95f, 0.1f, 0.8f},
                     hi = {1.5f, 1.1f, 1.3f, 1.05f, 3.f, 1.2f};
  // ℓ chosen so that ratios fall inside and outside the clip ranges.
  std::vector<double> lp = {-1.1, -1.5, -0.9, -3.0, -2.5, -0.05};
  const std::vector<int32_t> tg(size_t(T), 0);
  for (int loss = 0; loss <= 4; loss++)
    for (int per_token = 0; per_token < 2; per_token++) {
      te_train_item it;
      std::memset(&it, 0, sizeof it);
      it.n_tokens = T, it.k = 1, it.loss = te_loss(loss), it.weights = w.data(), it.logprobs = q.data();
      it.targets = tg.data();
      it.advantages = adv.data(), it.clip_low_threshold = 0.8f, it.clip_high_threshold = 1.2f, it.beta = 0.05f;
      if (per_token) it.clip_low = lo.data(), it.clip_high = hi.data();
      tt::ok_status(loss_validate(it), "loss_validate " + std::to_string(loss));
      double worst = 0;
      for (int t = 0; t < T; t++) {
        if (loss == TE_LOSS_CISPO) {  // the clipped ratio is a constant (stop-gradient): d/dℓ = −clip(r)·A
          double r = std::exp(lp[size_t(t)] - q[size_t(t)]);
          double l = per_token ? lo[size_t(t)] : 0.8, hgh = per_token ? hi[size_t(t)] : 1.2;
          worst = std::max(worst, std::fabs(loss_token(loss_term(it, t, 0), lp[size_t(t)]).dlogp +
                                            std::clamp(r, l, hgh) * adv[size_t(t)]));
          continue;
        }
        const double h = 1e-6;
        const LossTerm term = loss_term(it, t, 0);
        double d = loss_token(term, lp[size_t(t)]).dlogp;
        double fd = (loss_token(term, lp[size_t(t)] + h).loss - loss_token(term, lp[size_t(t)] - h).loss) / (2 * h);
        worst = std::max(worst, std::fabs(d - fd));
      }
      tt::near(worst, 0, 1e-6, 0, "loss " + std::to_string(loss) + (per_token ? " per-token clips" : "") + " dloss/dlogprob");
    }
  te_train_item bad;
  std::memset(&bad, 0, sizeof bad);
  bad.n_tokens = T, bad.k = 1, bad.loss = TE_LOSS_PPO, bad.logprobs = q.data();
  tt::check(loss_validate(bad) == TE_EINVAL, "ppo without advantages is rejected");
  std::vector<float> nan_adv = adv;
  nan_adv[3] = NAN;
  bad.advantages = nan_adv.data();
  tt::check(loss_validate(bad) == TE_EINVAL, "NaN advantage is rejected");
}

// The whole model: loss of te_forward_backward vs its LoRA gradients, by finite differences.
void test_model_fd() {
  Config c;
  c.arch = Arch::Qwen3, c.arch_name = "qwen3", c.V = 48, c.C = 16, c.L = 2, c.NH = 4, c.NKV = 2, c.HD = 4, c.FF = 24;
  c.max_pos = 32, c.qk_norm = true, c.qkv_bias = true, c.tie = true;
  Model m;
  if (!tt::ok_status(model_init_random(&m, c, 7, 32), "random model")) return;
  // Larger weights than the default 0.02 so that every path carries signal (norm weights stay 1).
  for (size_t i = 0; i < m.mem.size(); i++)
    if (m.mem.data()[i] != 1.f) m.mem.data()[i] *= 10.f;
  te_engine *e = nullptr;
  te_engine_options o{2, 8, 0, nullptr};
  if (!tt::ok_status(engine_create_from_model(std::move(m), &o, &e), "engine from model")) return;
  te_lora_config lc{3, 6.f, 11, 1, 1, 1};
  tt::ok_status(te_adapter_create(e, "a", &lc), "adapter");
  Adapter *a = find_adapter(e, "a");
  auto bvals = randn(a->n_params, 0.3f);
  for (const auto &en : a->entries)
    if (en.is_B) std::memcpy(a->params.data() + en.offset, bvals.data() + en.offset, sizeof(float) * en.rows * en.cols);
  std::vector<int32_t> tok = {3, 17, 5, 40, 22, 9, 1}, tgt = {17, 5, 40, 22, 9, 1, 30}, tok2 = {8, 2, 44}, tgt2 = {2, 44, 0};
  std::vector<float> w = {1.f, 0.5f, -0.3f, 1.f, 0.f, 2.f, 1.f}, w2 = {1.f, 1.f, 1.f};
  auto run = [&](bool fwd_only) {
    te_train_item it[2];
    std::memset(it, 0, sizeof it);
    double loss[2] = {0, 0};
    it[0].adapter_id = "a", it[0].tokens = tok.data(), it[0].n_tokens = 7, it[0].targets = tgt.data(), it[0].k = 1;
    it[0].weights = w.data(), it[0].forward_only = fwd_only, it[0].out_loss = &loss[0];
    it[1] = it[0];
    it[1].tokens = tok2.data(), it[1].n_tokens = 3, it[1].targets = tgt2.data(), it[1].weights = w2.data();
    it[1].out_loss = &loss[1];
    te_forward_backward(e, it, 2);
    return loss[0] + loss[1];
  };
  a->grads.zero();
  run(false);
  std::vector<float> grad(a->grads.data(), a->grads.data() + a->n_params);
  // A spread of parameters from every tensor.
  double worst = 0;
  for (const auto &en : a->entries) {
    size_t n = size_t(en.rows) * en.cols;
    for (int s = 0; s < 3; s++) {
      size_t i = en.offset + (size_t(s) * n) / 3 + (size_t(s) * 5 + 1) % (n / 3);
      float x0 = a->params.data()[i];
      const float h = 1e-2f;
      a->params.data()[i] = x0 + h;
      double fp = run(true);
      a->params.data()[i] = x0 - h;
      double fm = run(true);
      a->params.data()[i] = x0;
      double fd = (fp - fm) / (2 * h);
      double err = std::fabs(fd - grad[i]) / std::max(0.05, std::fabs(fd));
      if (getenv("TUFT_TEST_VERBOSE")) std::printf("%s[%zu] fd %.6g grad %.6g\n", en.name.c_str(), i - en.offset, fd, grad[i]);
      worst = std::max(worst, err);
    }
  }
  tt::near(worst, 0, 2e-2, 0, "whole LoRA model gradient vs finite differences");
  te_engine_destroy(e);
}


// Token choice over a vocabulary of several blocks: greedy takes the first largest logit; a draw over
// the whole vocabulary follows softmax(z / t) wherever in the vocabulary the mass lies (its blocks are
// walked by their sums), and the same seed gives the same tokens.
void test_choose() {
  const int V = 3000;  // three blocks of ids, the last one short
  std::vector<float> z(V, -30.f);
  const int ids[3] = {5, 1500, 2999};
  const double p[3] = {0.2, 0.5, 0.3};
  for (int i = 0; i < 3; i++) z[size_t(ids[i])] = float(std::log(p[i]));
  z[7] = z[1500];  // a tie with the largest: greedy takes the first
  std::vector<float> prob;
  std::vector<int32_t> idx;
  Rng greedy_rng(1, 0);
  tt::check(choose_token(z.data(), V, {0.f, 0, 1.f}, greedy_rng, prob, idx) == 7, "greedy: first largest logit");
  z[7] = -30.f;

  const int n = 20000;
  int count[3] = {0, 0, 0}, other = 0;
  Rng rng(42, 0);
  for (int k = 0; k < n; k++) {
    const int32_t t = choose_token(z.data(), V, {1.f, -1, 1.f}, rng, prob, idx);
    const int *hit = std::find(ids, ids + 3, t);
    if (hit == ids + 3) other++;
    else count[hit - ids]++;
  }
  for (int i = 0; i < 3; i++) tt::near(count[i] / double(n), p[i], 0.015, 0, "draw frequency of id " + std::to_string(ids[i]));
  tt::check(other < n / 100, "draws land on the ids that hold the mass");
  Rng a(9, 3), b(9, 3);
  bool same = true;
  for (int k = 0; k < 50; k++)
    same = same && choose_token(z.data(), V, {0.7f, -1, 1.f}, a, prob, idx) == choose_token(z.data(), V, {0.7f, -1, 1.f}, b, prob, idx);
  tt::check(same, "the same seed draws the same tokens");
}

// Inside a PoolScope, on the caller and on the pool's threads, denormal floats are flushed to zero (an
// Intel core takes a slow assist for each); the caller's own mode comes back when the scope ends.
void test_denormals_flushed(Pool &pool) {
#if defined(__x86_64__)
  volatile float tiny = 1e-40f, one = 1.f;  // volatile: computed at run time, in the thread's mode
  tt::check(tiny * one != 0.f, "outside a pool scope denormals are kept");
  {
    PoolScope scope(&pool);
    tt::check(tiny * one == 0.f, "the caller flushes denormals inside a pool scope");
    std::atomic<int> kept{0};
    parallel_for(64, 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; i++)
        if (tiny * one != 0.f) kept++;
    });
    tt::check(kept == 0, "the pool's threads flush denormals");
  }
  tt::check(tiny * one != 0.f, "the caller's mode is restored when the scope ends");
#else
  (void)pool;
#endif
}

}  // namespace

int main() {
  Pool pool(2);
  test_denormals_flushed(pool);
  PoolScope scope(&pool);
  BackendPtr be;
  if (!tt::ok_status(backend_create("cpu", nullptr, 0, &be), "cpu backend")) return tt::finish("test_ops");
  g_be = be.get();
  test_gemm();
  test_rmsnorm();
  test_rope();
  test_attention();
  test_attention_backward_blocks();
  for (const auto &s : {std::array<int, 3>{4, 2, 40}, {8, 4, 64}, {8, 1, 32}}) test_kv_attention_matches_training(s[0], s[1], s[2]);
  test_swiglu();
  test_linear_lora();
  test_head_loss();
  test_losses();
  test_model_fd();
  test_choose();
  return tt::finish("test_ops");
}
