// test_backend_ops.cc — every op of the backend table run on two backends over several shapes and
// compared (the idea of ggml's tests/test-backend-ops.cpp): seeded random inputs go into each backend's
// own memory (alloc + upload), the op runs on both, the outputs come back (download) and must agree
// within the op's stated tolerance: max |got − ref| over max |ref| of each output. Prints the max
// absolute and relative error per case; exits 1 on any mismatch.
//
// The reference is "cpu-builtin" (the readable CPU code with the built-in GEMM, always built); every
// other available backend is compared with it: "cpu" with OpenBLAS today, a device backend later. With
// OpenBLAS the two CPU backends differ in their general GEMM only, so the test also requires that some
// GEMM case differ bit for bit: proof that two implementations ran. Without OpenBLAS it says so and
// compares cpu with cpu-builtin through the table all the same.
//   test_backend_ops [FIXTURES_DIR (ignored)] [-b BACKEND]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/buffer.h"
#include "backend/registry.h"
#include "common/pool.h"

using namespace tuft;

namespace {

// One tensor of a case: its host contents before the op (outputs too: ops may accumulate into them or
// leave parts untouched), and its role.
struct Tensor {
  enum Role { IN, OUT, SCRATCH };
  std::string name;
  std::vector<float> init;
  Role role = IN;
  bool f64 = false;  // init holds init.size() / 2 doubles
};

struct Case {
  Case(std::string n, Op o, OpShape s, double tolerance, bool uses_gemm = false)
      : name(std::move(n)), op(o), shape(s), tol(tolerance), gemm(uses_gemm) {}
  std::string name;
  Op op;
  OpShape shape;
  double tol;         // on max |got − ref| / max |ref|, per output
  bool gemm = false;  // runs a general GEMM: may differ in rounding between cpu and cpu-builtin
  std::vector<Tensor> t;
  // Runs the op with the tensors' backend pointers, in the order of t.
  std::function<te_status(Backend &, const std::vector<float *> &)> run;
};

std::mt19937 g_rng(2024);

std::vector<float> randn(size_t n, float sd = 1.f) {
  std::normal_distribution<float> nd(0.f, sd);
  std::vector<float> v(n);
  for (auto &x : v) x = nd(g_rng);
  return v;
}
std::vector<float> uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> ud(lo, hi);
  std::vector<float> v(n);
  for (auto &x : v) x = ud(g_rng);
  return v;
}
std::vector<float> nans(size_t n) { return std::vector<float>(n, NAN); }
Tensor in(const std::string &name, std::vector<float> v) { return {name, std::move(v), Tensor::IN}; }
Tensor out(const std::string &name, std::vector<float> v) { return {name, std::move(v), Tensor::OUT}; }
Tensor scratch(const std::string &name, size_t n) { return {name, nans(n), Tensor::SCRATCH}; }

std::string dims(std::initializer_list<std::pair<const char *, int>> d) {
  std::string s;
  for (const auto &[k, v] : d) s += std::string(" ") + k + "=" + std::to_string(v);
  return s;
}

// The case on one backend: tensors in its memory, the op, the outputs back on the host.
bool execute(Backend &be, const Case &c, std::vector<std::vector<float>> *outs) {
  std::vector<DeviceBuffer> bufs(c.t.size());
  std::vector<float *> p;
  for (size_t i = 0; i < c.t.size(); i++) {
    const Tensor &t = c.t[i];
    if (bufs[i].reserve(be, t.init.size(), t.name.c_str()) != TE_OK ||
        be.op->upload(be, bufs[i].data(), t.init.data(), t.init.size() * sizeof(float)) != TE_OK)
      return false;
    p.push_back(bufs[i].data());
  }
  if (c.run(be, p) != TE_OK) return false;
  outs->clear();
  for (size_t i = 0; i < c.t.size(); i++) {
    if (c.t[i].role != Tensor::OUT) continue;
    outs->emplace_back(c.t[i].init.size());
    if (be.op->download(be, outs->back().data(), p[i], c.t[i].init.size() * sizeof(float)) != TE_OK) return false;
  }
  return true;
}

struct Err {
  double abs = 0, rel = 0;
  bool finite = true, identical = true;
};

template <class T>
Err compare(const T *got, const T *ref, size_t n) {
  Err e;
  double big = 0;
  for (size_t i = 0; i < n; i++) {
    const double g = double(got[i]), r = double(ref[i]);
    e.identical = e.identical && std::memcmp(&got[i], &ref[i], sizeof(T)) == 0;
    if (!std::isfinite(g) || !std::isfinite(r)) {
      e.finite = false;
      continue;
    }
    e.abs = std::max(e.abs, std::fabs(g - r));
    big = std::max(big, std::fabs(r));
  }
  e.rel = big > 0 ? e.abs / big : e.abs;
  return e;
}

// ---- the cases, one builder per op family -----------------------------------------------------------

std::vector<Case> gemm_cases() {
  std::vector<Case> cs;
  // General-path shapes (the two CPU backends' GEMMs differ there), a small-M decode, the mid-M kernel.
  const int shapes[][3] = {{37, 53, 300}, {600, 70, 96}, {5, 40, 16}, {45, 300, 1100}, {1, 7, 3}};
  for (const auto &s : shapes)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        const int M = s[0], N = s[1], K = s[2];
        const int lda = ta ? M + 3 : K + 2, ldb = tb ? K + 1 : N + 5, ldc = N + 7;
        for (float beta : {0.f, 0.25f}) {
          Case c{"gemm" + dims({{"ta", ta}, {"tb", tb}, {"M", M}, {"N", N}, {"K", K}}) + (beta == 0 ? " beta=0" : ""),
                 Op::GEMM, {}, 2e-5, true};
          c.shape.rows = M, c.shape.out = N, c.shape.in = K;
          c.t = {in("A", randn(size_t(ta ? K : M) * lda)), in("B", randn(size_t(tb ? N : K) * ldb)),
                 out("C", beta == 0 ? nans(size_t(M) * ldc) : randn(size_t(M) * ldc))};
          if (beta == 0)  // beta 0 never reads C; the padding between rows stays as it was
            for (int i = 0; i < M; i++)
              for (int j = N; j < ldc; j++) c.t[2].init[size_t(i) * ldc + j] = 0.f;
          c.run = [=](Backend &be, const std::vector<float *> &p) {
            return be.op->gemm(be, ta, tb, M, N, K, 0.5f, p[0], lda, p[1], ldb, beta, p[2], ldc);
          };
          cs.push_back(c);
        }
      }
  return cs;
}

std::vector<Case> linear_cases() {
  std::vector<Case> cs;
  for (int N : {37, 3}) {
    const int in_ = 96, out_ = 80, ldx = in_ + 4, ldy = out_ + 9;
    for (int bias = 0; bias < 2; bias++) {
      Case c{"linear_forward" + dims({{"N", N}, {"in", in_}, {"out", out_}, {"bias", bias}}), Op::LINEAR_FORWARD,
             {}, 2e-5, true};
      c.shape.rows = N, c.shape.in = in_, c.shape.out = out_;
      std::vector<float> y(size_t(N) * ldy, 0.f);
      c.t = {in("x", randn(size_t(N) * ldx)), in("W", randn(size_t(out_) * in_)), in("bias", randn(out_)),
             out("y", y)};
      c.run = [=](Backend &be, const std::vector<float *> &p) {
        return be.op->linear_forward(be, p[3], ldy, p[0], ldx, p[1], bias ? p[2] : nullptr, N, in_, out_);
      };
      cs.push_back(c);
    }
    for (float beta : {0.f, 1.f}) {
      Case c{"linear_backward" + dims({{"N", N}, {"in", in_}, {"out", out_}}) + (beta == 0 ? " beta=0" : " beta=1"),
             Op::LINEAR_BACKWARD, {}, 2e-5, true};
      c.shape.rows = N, c.shape.in = in_, c.shape.out = out_;
      c.t = {in("dy", randn(size_t(N) * ldy)), in("W", randn(size_t(out_) * in_)), out("dx", randn(size_t(N) * ldx))};
      c.run = [=](Backend &be, const std::vector<float *> &p) {
        return be.op->linear_backward(be, p[2], ldx, p[0], ldy, p[1], N, in_, out_, beta);
      };
      cs.push_back(c);
    }
  }
  return cs;
}

// Adapters of different ranks over groups of rows: {adapter, row0, n}; rows in no group use no adapter.
struct Layout {
  const char *name;
  int N;
  std::vector<int> ranks;                // per adapter
  std::vector<std::array<int, 3>> groups;  // adapter, row0, n
};

std::vector<Case> lora_cases() {
  const std::vector<Layout> layouts = {
      // a long group (the general GEMM), an adapter used twice (its gradients accumulate), a gap
      {"mixed", 69, {4, 8, 16}, {{0, 0, 3}, {1, 3, 40}, {2, 43, 1}, {0, 51, 18}}},
      // a decode step: one row per sequence, many adapters (one group per task)
      {"decode", 8, {4, 16, 8, 2}, {{0, 0, 1}, {1, 1, 1}, {2, 2, 1}, {3, 3, 1}, {1, 4, 1}, {2, 6, 1}}},
  };
  std::vector<Case> cs;
  const int in_ = 96, out_ = 80, ldx = in_ + 4, ldy = out_ + 9;
  for (const Layout &L : layouts) {
    const int A = int(L.ranks.size()), RM = *std::max_element(L.ranks.begin(), L.ranks.end()), N = L.N;
    std::vector<Tensor> weights;
    for (int a = 0; a < A; a++) {
      weights.push_back(in("A" + std::to_string(a), randn(size_t(L.ranks[a]) * in_, 0.3f)));
      weights.push_back(in("B" + std::to_string(a), randn(size_t(out_) * L.ranks[a], 0.3f)));
    }
    // Tensors: A0 B0 A1 B1 …, then the op's own; groups point into them.
    auto groups = [L, A](const std::vector<float *> &p, int first_grad) {
      std::vector<LoraGroup> gs;
      for (const auto &g : L.groups) {
        const int a = g[0], R = L.ranks[size_t(a)];
        gs.push_back({g[1], g[2], R, 2.f / float(R), p[size_t(2 * a)], p[size_t(2 * a + 1)],
                      first_grad < 0 ? nullptr : p[size_t(first_grad + 2 * a)],
                      first_grad < 0 ? nullptr : p[size_t(first_grad + 2 * a + 1)]});
      }
      return gs;
    };
    const std::string d = std::string(" ") + L.name + dims({{"N", N}, {"adapters", A}, {"RM", RM}});
    {
      Case c{"lora_forward" + d, Op::LORA_FORWARD, {}, 2e-5, true};
      c.shape.rows = N, c.shape.in = in_, c.shape.out = out_, c.shape.rank = RM;
      c.t = weights;
      const int base = int(c.t.size());
      c.t.push_back(in("x", randn(size_t(N) * ldx)));
      c.t.push_back(out("y", randn(size_t(N) * ldy)));
      c.t.push_back(out("u", std::vector<float>(size_t(N) * RM, 0.f)));
      c.run = [=](Backend &be, const std::vector<float *> &p) {
        auto gs = groups(p, -1);
        return be.op->lora_forward(be, p[size_t(base + 1)], ldy, p[size_t(base + 2)], RM, p[size_t(base)], ldx,
                                   gs.data(), int(gs.size()), in_, out_);
      };
      cs.push_back(c);
    }
    {
      Case c{"lora_backward" + d, Op::LORA_BACKWARD, {}, 2e-5, true};
      c.shape.rows = N, c.shape.in = in_, c.shape.out = out_, c.shape.rank = RM;
      c.t = weights;
      const int grads = int(c.t.size());
      for (int a = 0; a < A; a++) {
        c.t.push_back(out("dA" + std::to_string(a), randn(size_t(L.ranks[a]) * in_)));
        c.t.push_back(out("dB" + std::to_string(a), randn(size_t(out_) * L.ranks[a])));
      }
      const int base = int(c.t.size());
      c.t.push_back(in("dy", randn(size_t(N) * ldy)));
      c.t.push_back(in("x", randn(size_t(N) * ldx)));
      c.t.push_back(in("u", randn(size_t(N) * RM)));
      c.t.push_back(out("dx", randn(size_t(N) * ldx)));
      c.t.push_back(scratch("t", size_t(N) * RM));
      c.run = [=](Backend &be, const std::vector<float *> &p) {
        auto gs = groups(p, grads);
        return be.op->lora_backward(be, p[size_t(base + 3)], ldx, p[size_t(base + 4)], p[size_t(base)], ldy,
                                    p[size_t(base + 1)], ldx, p[size_t(base + 2)], RM, gs.data(), int(gs.size()), in_,
                                    out_);
      };
      cs.push_back(c);
    }
  }
  return cs;
}

// Runs c on be and returns its outputs (for inputs of a backward that must match a real forward).
std::vector<std::vector<float>> outputs_on(Backend &be, const Case &c) {
  std::vector<std::vector<float>> o;
  if (!execute(be, c, &o))
    std::fprintf(stderr, "cannot run %s on the reference: %s\n", c.name.c_str(), te_last_error());
  return o;
}

std::vector<Case> attention_cases(Backend &ref) {
  std::vector<Case> cs;
  const std::vector<Span> spans = {{0, 5}, {5, 1}, {6, 17}, {23, 33}};  // variable lengths, one of 1 token
  const int N = 56, S = int(spans.size());
  const int heads[][3] = {{4, 2, 16}, {3, 3, 8}, {8, 1, 32}};  // GQA, MHA, MQA
  for (const auto &h : heads) {
    const int NH = h[0], NKV = h[1], HD = h[2], Q = NH * HD, KV = NKV * HD, QKV = Q + 2 * KV;
    const std::string d = dims({{"N", N}, {"spans", S}, {"NH", NH}, {"NKV", NKV}, {"HD", HD}});
    OpShape shape;
    shape.rows = N, shape.heads = NH, shape.kv_heads = NKV, shape.head_dim = HD;
    // q, k, v as column slices of one fused row, as the model lays them out.
    const std::vector<float> qkv = randn(size_t(N) * QKV);
    Case f{"attention_forward" + d, Op::ATTENTION_FORWARD, shape, 1e-5};
    f.t = {in("qkv", qkv), out("out", nans(size_t(N) * Q)), out("lse", nans(size_t(N) * NH))};
    f.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->attention_forward(be, p[1], Q, p[2], p[0], QKV, p[0] + Q, QKV, p[0] + Q + KV, QKV, spans.data(),
                                      S, NH, NKV, HD);
    };
    cs.push_back(f);
    auto fo = outputs_on(ref, f);
    if (fo.size() != 2) continue;
    Case b{"attention_backward" + d, Op::ATTENTION_BACKWARD, shape, 1e-5};
    b.t = {in("qkv", qkv),          in("out", fo[0]),
           in("lse", fo[1]),        in("dout", randn(size_t(N) * Q)),
           out("dq", nans(size_t(N) * Q)), out("dk", nans(size_t(N) * KV)),
           out("dv", nans(size_t(N) * KV)), scratch("scratch", 2 * size_t(N) * Q)};
    b.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->attention_backward(be, p[4], Q, p[5], KV, p[6], KV, p[7], p[3], Q, p[1], Q, p[2], p[0], QKV,
                                       p[0] + Q, QKV, p[0] + Q + KV, QKV, spans.data(), S, NH, NKV, HD, N);
    };
    cs.push_back(b);
  }
  return cs;
}

std::vector<Case> norm_rope_swiglu_cases(Backend &ref) {
  std::vector<Case> cs;
  const int norms[][4] = {{7, 1, 96, 100}, {5, 4, 16, 70}};  // N, G, D, ld
  for (const auto &s : norms) {
    const int N = s[0], G = s[1], D = s[2], ld = s[3];
    const std::string d = dims({{"N", N}, {"G", G}, {"D", D}});
    OpShape shape;
    shape.rows = N, shape.in = D;
    const std::vector<float> x = randn(size_t(N) * ld), w = uniform(size_t(D), 0.5f, 1.5f);
    Case f{"rmsnorm_forward" + d, Op::RMSNORM_FORWARD, shape, 1e-6};
    f.t = {in("x", x), in("w", w), out("out", randn(size_t(N) * ld)), out("rstd", nans(size_t(N) * G))};
    f.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->rmsnorm_forward(be, p[2], ld, p[3], p[0], ld, p[1], N, G, D, 1e-6f);
    };
    cs.push_back(f);
    auto fo = outputs_on(ref, f);
    if (fo.size() != 2) continue;
    Case b{"rmsnorm_backward" + d, Op::RMSNORM_BACKWARD, shape, 1e-5};
    b.t = {in("x", x), in("w", w), in("rstd", fo[1]), in("dout", randn(size_t(N) * ld)),
           out("dx", randn(size_t(N) * ld))};
    b.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->rmsnorm_backward(be, p[4], ld, p[3], ld, p[0], ld, p[1], p[2], N, G, D);
    };
    cs.push_back(b);
  }
  {
    const int N = 9, H = 3, HD = 16, ld = H * HD + 5, P = 64, half = HD / 2;
    std::vector<float> cosv(size_t(P) * half), sinv(cosv.size());
    for (int p = 0; p < P; p++)
      for (int i = 0; i < half; i++) {
        const double a = p * std::pow(10000.0, -2.0 * i / HD);
        cosv[size_t(p) * half + i] = float(std::cos(a)), sinv[size_t(p) * half + i] = float(std::sin(a));
      }
    const std::vector<int32_t> pos = {0, 1, 2, 17, 63, 5, 5, 40, 33};
    for (int bwd = 0; bwd < 2; bwd++) {
      Case c{std::string(bwd ? "rope_backward" : "rope_forward") + dims({{"N", N}, {"H", H}, {"HD", HD}}),
             bwd ? Op::ROPE_BACKWARD : Op::ROPE_FORWARD, {}, 1e-6};
      c.shape.rows = N, c.shape.heads = H, c.shape.head_dim = HD;
      c.t = {in("cos", cosv), in("sin", sinv), out("x", randn(size_t(N) * ld))};
      c.run = [=](Backend &be, const std::vector<float *> &p) {
        return bwd ? be.op->rope_backward(be, p[2], ld, pos.data(), p[0], p[1], N, H, HD)
                   : be.op->rope_forward(be, p[2], ld, pos.data(), p[0], p[1], N, H, HD);
      };
      cs.push_back(c);
    }
  }
  for (const auto &s : {std::array<int, 2>{5, 37}, std::array<int, 2>{3, 64}}) {
    const int N = s[0], FF = s[1];
    OpShape shape;
    shape.rows = N, shape.in = FF;
    const std::vector<float> gu = randn(size_t(N) * 2 * FF, 2.f);
    Case f{"swiglu_forward" + dims({{"N", N}, {"FF", FF}}), Op::SWIGLU_FORWARD, shape, 1e-5};
    f.t = {in("gu", gu), out("h", nans(size_t(N) * FF))};
    f.run = [=](Backend &be, const std::vector<float *> &p) { return be.op->swiglu_forward(be, p[1], p[0], N, FF); };
    cs.push_back(f);
    Case b{"swiglu_backward" + dims({{"N", N}, {"FF", FF}}), Op::SWIGLU_BACKWARD, shape, 1e-5};
    b.t = {in("gu", gu), in("dh", randn(size_t(N) * FF)), out("dgu", nans(size_t(N) * 2 * FF))};
    b.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->swiglu_backward(be, p[2], p[1], p[0], N, FF);
    };
    cs.push_back(b);
  }
  return cs;
}

std::vector<Case> tensor_cases() {
  std::vector<Case> cs;
  {
    const int N = 11, C = 40, V = 50;
    const std::vector<int32_t> tokens = {0, 49, 3, 3, 17, 8, 49, 0, 21, 30, 1};
    Case c{"embedding_forward" + dims({{"N", N}, {"C", C}, {"V", V}}), Op::EMBEDDING_FORWARD, {}, 0};
    c.shape.rows = N, c.shape.out = C;
    c.t = {in("wte", randn(size_t(V) * C)), out("x", nans(size_t(N) * C))};
    c.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->embedding_forward(be, p[1], tokens.data(), p[0], N, C);
    };
    cs.push_back(c);
  }
  {
    const size_t n = 10003;
    Case c{"add n=" + std::to_string(n), Op::ADD, {}, 0};
    c.t = {in("x", randn(n)), out("y", randn(n))};
    c.run = [=](Backend &be, const std::vector<float *> &p) { return be.op->add(be, p[1], p[0], n); };
    cs.push_back(c);
  }
  {
    const int N = 9, D = 13, ldd = 20, lds = 31;
    Case c{"copy_rows" + dims({{"N", N}, {"D", D}}), Op::COPY_ROWS, {}, 0};
    c.t = {in("src", randn(size_t(N) * lds)), out("dst", randn(size_t(N) * ldd))};
    c.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->copy_rows(be, p[1], ldd, p[0], lds, N, D);
    };
    cs.push_back(c);
  }
  return cs;
}

std::vector<Case> head_loss_cases() {
  std::vector<Case> cs;
  const int n = 5, V = 1003;  // V off the 16-lane width and the 1024 block
  for (int K : {1, 3})
    for (int grad = 0; grad < 2; grad++) {
      std::vector<LossTerm> terms;
      std::mt19937 r(unsigned(K * 2 + grad));
      for (int i = 0; i < n * K; i++) {
        LossTerm t{int32_t(r() % V), TE_LOSS_CROSS_ENTROPY, 0, 0, 0, 0.8f, 1.2f, 0.1f};
        t.loss = K == 1 ? te_loss(i % 5) : TE_LOSS_CROSS_ENTROPY;  // every loss where the targets are 1-D
        t.weight = float(int(r() % 5) - 1) * 0.5f;                 // includes weight 0 (a padding term)
        t.logprob = -float(r() % 90) / 10.f, t.advantage = float(int(r() % 21) - 10) / 10.f;
        terms.push_back(t);
      }
      Case c{"head_loss" + dims({{"n", n}, {"V", V}, {"K", K}, {"grad", grad}}), Op::HEAD_LOSS, {}, 1e-5};
      c.shape.rows = n, c.shape.in = V;
      c.t = {out("logits", randn(size_t(n) * V, 3.f)), out("logp", nans(size_t(n) * K)),
             {"loss", nans(size_t(2 * n * K)), Tensor::OUT, true}};
      c.run = [=](Backend &be, const std::vector<float *> &p) {
        return be.op->head_loss(be, p[1], reinterpret_cast<double *>(p[2]), p[0], terms.data(), n, V, K, grad);
      };
      cs.push_back(c);
    }
  return cs;
}

std::vector<Case> adamw_cases() {
  std::vector<Case> cs;
  const size_t n = 10007;
  {
    Case c{"grad_sq_norm n=" + std::to_string(n), Op::GRAD_SQ_NORM, {}, 1e-12};
    c.t = {in("g", randn(n)), {"norm", nans(2), Tensor::OUT, true}};
    c.run = [=](Backend &be, const std::vector<float *> &p) {
      double s = 0;
      TE_TRY(be.op->grad_sq_norm(be, &s, p[0], n));
      return be.op->upload(be, p[1], &s, sizeof s);  // into backend memory, like every other output
    };
    cs.push_back(c);
  }
  // Step 2 of lr 1e-3, betas (0.9, 0.95), weight decay 0.01, gradients clipped to half.
  const AdamwStep s{0.5f, 1.f - 1e-3f * 0.01f, 0.9f, 0.95f, 1e-8f, float(1e-3 / (1 - 0.9 * 0.9)),
                    float(std::sqrt(1 - 0.95 * 0.95))};
  Case c{"adamw n=" + std::to_string(n) + " step 2, clip 0.5", Op::ADAMW, {}, 1e-6};
  c.t = {out("w", randn(n)), out("m", randn(n, 0.01f)), out("v", uniform(n, 0.f, 1e-3f)), out("g", randn(n))};
  c.run = [=](Backend &be, const std::vector<float *> &p) { return be.op->adamw(be, p[0], p[1], p[2], p[3], s, n); };
  cs.push_back(c);
  return cs;
}

std::vector<Case> kv_cases() {
  std::vector<Case> cs;
  const int L = 2, NH = 4, NKV = 2, HD = 16, KV = NKV * HD, Q = NH * HD, blocks = 7;
  const size_t cache = size_t(blocks) * L * KV_BLOCK * 2 * KV;
  // Three sequences with scattered block tables; rows at the first position, a block boundary, deep in.
  static const std::vector<int32_t> seq_a = {4, 1}, seq_b = {0}, seq_c = {5, 2, 3};
  const std::vector<CacheRow> rows = {{seq_a.data(), 16}, {seq_b.data(), 0}, {seq_c.data(), 37}, {seq_a.data(), 31}};
  const int N = int(rows.size());
  OpShape shape;
  shape.rows = N, shape.heads = NH, shape.kv_heads = NKV, shape.head_dim = HD;
  const std::string d = dims({{"N", N}, {"L", L}, {"NH", NH}, {"NKV", NKV}, {"HD", HD}});
  {
    const int ld = KV + 3;
    Case c{"kv_write" + d + " l=1", Op::KV_WRITE, shape, 0};
    c.t = {in("k", randn(size_t(N) * ld)), in("v", randn(size_t(N) * ld)), out("cache", randn(cache))};
    c.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->kv_write(be, {p[2], L, KV}, p[0], ld, p[1], ld, rows.data(), N, 1);
    };
    cs.push_back(c);
  }
  {
    Case c{"kv_copy P=21" + d, Op::KV_COPY, shape, 0};
    c.t = {out("cache", randn(cache))};
    c.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->kv_copy(be, {p[0], L, KV}, seq_a.data(), seq_c.data(), 21);
    };
    cs.push_back(c);
  }
  for (int l = 0; l < L; l++) {
    const int ldq = Q + 5;
    Case c{"kv_attention" + d + " l=" + std::to_string(l), Op::KV_ATTENTION, shape, 1e-5};
    c.t = {in("cache", randn(cache)), in("q", randn(size_t(N) * ldq)), out("out", nans(size_t(N) * Q))};
    c.run = [=](Backend &be, const std::vector<float *> &p) {
      return be.op->kv_attention(be, p[2], Q, p[1], ldq, {p[0], L, KV}, rows.data(), N, l, NH, NKV, HD);
    };
    cs.push_back(c);
  }
  return cs;
}

// Every entry of the table is filled.
bool table_complete(const Backend &be) {
  const BackendOps &o = *be.op;
  const void *entries[] = {
      (void *)o.destroy,          (void *)o.supports,          (void *)o.alloc,           (void *)o.free,
      (void *)o.zero,             (void *)o.upload,            (void *)o.download,        (void *)o.gemm,
      (void *)o.linear_forward,   (void *)o.linear_backward,   (void *)o.lora_forward,    (void *)o.lora_backward,
      (void *)o.attention_forward, (void *)o.attention_backward, (void *)o.rmsnorm_forward, (void *)o.rmsnorm_backward,
      (void *)o.rope_forward,     (void *)o.rope_backward,     (void *)o.swiglu_forward,  (void *)o.swiglu_backward,
      (void *)o.embedding_forward, (void *)o.add,              (void *)o.copy_rows,       (void *)o.head_loss,
      (void *)o.grad_sq_norm,     (void *)o.adamw,             (void *)o.kv_write,        (void *)o.kv_copy,
      (void *)o.kv_attention};
  static_assert(sizeof entries / sizeof entries[0] == 7 + size_t(Op::COUNT), "every entry listed");
  return std::all_of(std::begin(entries), std::end(entries), [](const void *p) { return p != nullptr; });
}

// Runs every case on `test` and on `ref`; returns the failures and counts bit-for-bit different GEMM cases.
int compare_backends(Backend &test, Backend &ref, const std::vector<Case> &cases, int *gemm_differ) {
  int failures = 0;
  *gemm_differ = 0;
  std::vector<bool> seen(size_t(Op::COUNT), false);
  for (const Case &c : cases) {
    seen[size_t(c.op)] = true;
    if (!test.op->supports(test, c.op, c.shape)) {
      std::printf("  skip %-70s not supported by %s\n", c.name.c_str(), test.name.c_str());
      continue;
    }
    std::vector<std::vector<float>> got, want;
    if (!execute(test, c, &got) || !execute(ref, c, &want)) {
      std::printf("  FAIL %-70s error: %s\n", c.name.c_str(), te_last_error());
      failures++;
      continue;
    }
    bool ok = true, identical = true;
    std::string detail;
    size_t o = 0;
    for (const Tensor &t : c.t) {
      if (t.role != Tensor::OUT) continue;
      const Err e = t.f64 ? compare(reinterpret_cast<const double *>(got[o].data()),
                                    reinterpret_cast<const double *>(want[o].data()), got[o].size() / 2)
                          : compare(got[o].data(), want[o].data(), got[o].size());
      o++;
      const bool pass = e.finite && e.rel <= c.tol;
      ok = ok && pass;
      identical = identical && e.identical;
      char b[160];
      std::snprintf(b, sizeof b, " %s: abs %.2e rel %.2e%s", t.name.c_str(), e.abs, e.rel,
                    e.finite ? "" : " NON-FINITE");
      detail += b;
    }
    if (c.gemm && !identical) (*gemm_differ)++;
    std::printf("  %s %-70s tol %.0e |%s\n", ok ? "ok  " : "FAIL", c.name.c_str(), c.tol, detail.c_str());
    failures += !ok;
  }
  for (int op = 0; op < int(Op::COUNT); op++)
    if (!seen[size_t(op)]) {
      std::printf("  FAIL no case covers %s\n", op_name(Op(op)));
      failures++;
    }
  return failures;
}

}  // namespace

int main(int argc, char **argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string only;
  for (int i = 1; i < argc; i++)
    if (std::string(argv[i]) == "-b" && i + 1 < argc) only = argv[++i];
  Pool pool(2);
  PoolScope scope(&pool);

  BackendPtr ref;
  if (backend_create("cpu-builtin", nullptr, 0, &ref) != TE_OK) {
    std::fprintf(stderr, "test_backend_ops: no reference backend: %s\n", te_last_error());
    return 1;
  }
  std::vector<Case> cases;
  for (auto part : {gemm_cases(), linear_cases(), lora_cases(), attention_cases(*ref), norm_rope_swiglu_cases(*ref),
                    tensor_cases(), head_loss_cases(), adamw_cases(), kv_cases()})
    cases.insert(cases.end(), part.begin(), part.end());

  // The backends under test: every available one but the reference (or the one named by -b).
  std::vector<std::string> names;
  for (int i = 0; i < backend_count(); i++) {
    const BackendReg &r = backend_reg(i);
    if (r.available() && std::string(r.name) != ref->name && (only.empty() || only == r.name)) names.push_back(r.name);
  }
  if (names.empty()) names.push_back(only.empty() ? ref->name : only);

  int failures = 0;
  for (const std::string &name : names) {
    BackendPtr test;
    if (backend_create(name.c_str(), nullptr, 0, &test) != TE_OK) {
      std::printf("FAIL backend %s: %s\n", name.c_str(), te_last_error());
      failures++;
      continue;
    }
    const bool same_code = test->device == ref->device;
    std::printf("%s (%s) vs %s (%s), %zu cases%s\n", test->name.c_str(), test->device.c_str(), ref->name.c_str(),
                ref->device.c_str(), cases.size(),
                same_code ? ": ONE implementation (this build has no OpenBLAS): the table is exercised, not a second "
                            "implementation"
                          : "");
    if (!table_complete(*test)) {
      std::printf("FAIL %s leaves entries of the table empty\n", test->name.c_str());
      failures++;
      continue;
    }
    int gemm_differ = 0;
    failures += compare_backends(*test, *ref, cases, &gemm_differ);
    if (!same_code) {
      std::printf("%d GEMM cases differ bit for bit between %s and %s%s\n", gemm_differ, test->device.c_str(),
                  ref->device.c_str(), gemm_differ ? ": two implementations ran" : "");
      if (gemm_differ == 0) {
        std::printf("FAIL every GEMM case is bit-identical: %s did not run its own GEMM\n", test->name.c_str());
        failures++;
      }
    }
  }
  std::printf("test_backend_ops: %s\n", failures ? "MISMATCH" : "all ops agree");
  std::printf("test_backend_ops: %d failures\n", failures);
  return failures ? 1 : 0;
}
