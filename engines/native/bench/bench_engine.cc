// bench_engine.cc — training throughput of the native engine on Qwen3-0.6B dimensions (random
// weights built in memory): forward_backward tokens/s at T = 128 and 512 for batch 1 and 8, achieved
// GFLOP/s against the sgemm peak measured in the same run, and 8 adapters' small batches fused in one
// pass versus one pass after another. Prints figures; asserts nothing.
//   bench_engine [--layers N] [--threads N] [--reps N] [--budget SECONDS]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cpu/gemm.h"
#include "model/engine_impl.h"

using namespace tuft;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Config qwen3_06b() {
  Config c;
  c.arch = Arch::Qwen3, c.arch_name = "qwen3";
  c.V = 151936, c.C = 1024, c.L = 28, c.NH = 16, c.NKV = 8, c.HD = 128, c.FF = 3072;
  c.max_pos = 40960, c.eps = 1e-6f, c.tie = true, c.qk_norm = true, c.rope_theta = 1e6;
  return c;
}

// Model FLOPs of one forward_backward: GEMMs with the frozen weights run forward and once backward
// (input gradients only); attention is 2 T²-products forward and 5 backward (scores recomputed).
double fb_flops(const Config &c, int B, int T) {
  double lin = 2.0 * (double(c.C) * c.QKV() + double(c.Q()) * c.C + double(c.C) * 2 * c.FF + double(c.FF) * c.C);
  double head = 2.0 * c.C * double(c.V);
  double att = 2.0 * c.NH * c.HD * (double(T) * (T + 1) / 2);
  return 2.0 * B * T * (c.L * lin + head) + 7.0 * B * c.L * att;
}

double sgemm_peak_gflops() {
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.01f), b(size_t(n) * n, 0.02f), c(size_t(n) * n);
  sgemm(false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);  // warm up
  double best = 1e30;
  for (int r = 0; r < 3; r++) {
    auto t0 = Clock::now();
    sgemm(false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * n * n * double(n) / best / 1e9;
}

struct Items {
  std::vector<std::vector<int32_t>> tok, tgt;
  std::vector<std::vector<float>> w, lp;
  std::vector<double> loss;
  std::vector<te_train_item> items;
};

Items make_items(const std::vector<std::string> &adapters, int T, uint32_t seed) {
  std::mt19937 rng(seed);
  Items x;
  size_t B = adapters.size();
  x.tok.resize(B), x.tgt.resize(B), x.w.resize(B), x.lp.resize(B), x.loss.resize(B), x.items.resize(B);
  for (size_t i = 0; i < B; i++) {
    for (int t = 0; t < T; t++) x.tok[i].push_back(int32_t(rng() % 151936)), x.tgt[i].push_back(int32_t(rng() % 151936));
    x.w[i].assign(size_t(T), 1.f);
    x.lp[i].assign(size_t(T), 0.f);
  }
  for (size_t i = 0; i < B; i++) {
    te_train_item &it = x.items[i];
    std::memset(&it, 0, sizeof it);
    it.adapter_id = adapters[i].c_str(), it.tokens = x.tok[i].data(), it.n_tokens = T, it.targets = x.tgt[i].data();
    it.k = 1, it.loss = TE_LOSS_CROSS_ENTROPY, it.weights = x.w[i].data(), it.out_logprobs = x.lp[i].data();
    it.out_loss = &x.loss[i];
  }
  return x;
}

// Best time of reps runs after one warm-up (which also grows the workspace).
double time_call(te_engine *e, std::vector<te_train_item> &items, int reps) {
  if (te_forward_backward(e, items.data(), int(items.size())) != TE_OK) {
    std::fprintf(stderr, "forward_backward failed: %s\n", te_last_error());
    std::exit(1);
  }
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    auto t0 = Clock::now();
    te_forward_backward(e, items.data(), int(items.size()));
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

}  // namespace

int main(int argc, char **argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured
  int layers = 0, threads = 0, reps = 1;
  double budget = 120;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--layers") layers = std::atoi(argv[i + 1]);
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--budget") budget = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_engine [--layers N] [--threads N] [--reps N] [--budget SECONDS]\n");
      return 2;
    }
  }
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  Pool pool(threads);
  PoolScope scope(&pool);
  gemm_set_threads(threads);

  Config c = qwen3_06b();
  const double peak = sgemm_peak_gflops();
  std::printf("machine: %d threads, gemm backend %s, sgemm peak %.1f GFLOP/s (2048³, measured now)\n", threads,
              gemm_backend(), peak);

  const int shapes[4][2] = {{1, 128}, {8, 128}, {1, 512}, {8, 512}};
  if (layers <= 0) {
    // Fit the run in the time budget (at an assumed 40% of peak) and in half of physical memory; the
    // LM head (V = 151936) costs the same whatever the depth.
    auto run_flops = [&](int L) {
      Config k = c;
      k.L = L;
      double f = 0;
      for (auto &s : shapes) f += (1 + reps) * fb_flops(k, s[0], s[1]);
      return f + 2 * (1 + reps) * fb_flops(k, 8, 64);
    };
    double rate = 0.4 * peak * 1e9, head = run_flops(0), per = run_flops(1) - head;
    double mem = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
    double per_layer = double(layer_acts_floats(c, 8 * 512, 32)) * 4 + double(c.C) * (c.QKV() + c.Q() + 3 * c.FF) * 4;
    int by_time = int((budget * rate - head) / per), by_mem = int(0.5 * mem / per_layer);
    layers = std::max(1, std::min({28, by_time, by_mem}));
    if (layers < 28)
      std::printf("NOTE: %d of 28 layers, to stay near the %.0f s budget (all 28 estimated at %.0f s at 40%% of "
                  "peak) and within half of %.0f GiB memory; pass --layers 28 for the full model\n",
                  layers, budget, run_flops(28) / rate, mem / (1 << 30));
  }
  c.L = layers;
  Model m;
  auto t0 = Clock::now();
  if (model_init_random(&m, c, 1, 4096) != TE_OK) {
    std::fprintf(stderr, "model: %s\n", te_last_error());
    return 1;
  }
  te_engine_options o{threads, 64, 4096};
  te_engine *e = nullptr;
  if (engine_create_from_model(std::move(m), &o, &e) != TE_OK) return 1;
  std::printf("model: Qwen3-0.6B dimensions (C 1024, NH 16, NKV 8, HD 128, FF 3072, V 151936, tied), %d layers, "
              "random weights in %.1f s\n",
              layers, seconds_since(t0));
  std::vector<std::string> ids;
  for (int i = 0; i < 8; i++) {
    ids.push_back("a" + std::to_string(i));
    te_lora_config lc{32, 64.f, uint64_t(i), 1, 1, 1};
    if (te_adapter_create(e, ids.back().c_str(), &lc) != TE_OK) return 1;
  }

  std::printf("\nforward_backward, LoRA rank 32 on every target, cross-entropy (model FLOPs: frozen-weight GEMMs "
              "forward + input gradients, attention)\n");
  std::printf("%6s %6s %12s %12s %10s %10s\n", "batch", "T", "seconds", "tokens/s", "GFLOP/s", "of peak");
  for (auto &s : shapes) {
    std::vector<std::string> ad(size_t(s[0]), ids[0]);
    Items x = make_items(ad, s[1], 7);
    double sec = time_call(e, x.items, reps);
    double gf = fb_flops(c, s[0], s[1]) / sec / 1e9;
    std::printf("%6d %6d %12.3f %12.1f %10.1f %9.0f%%\n", s[0], s[1], sec, s[0] * s[1] / sec, gf, 100 * gf / peak);
  }

  // 8 tenants with one small datum each: one fused call against 8 calls.
  const int T = 64;
  Items fused = make_items(ids, T, 9);
  double t_fused = time_call(e, fused.items, reps);
  double t_seq = 1e30;
  for (int r = 0; r < reps; r++) {
    auto t1 = Clock::now();
    for (size_t i = 0; i < ids.size(); i++) te_forward_backward(e, &fused.items[i], 1);
    t_seq = std::min(t_seq, seconds_since(t1));
  }
  std::printf("\n8 adapters x 1 datum of %d tokens: fused %.3f s, one after another %.3f s, fused speed-up %.2fx "
              "(target >= 2x)\n",
              T, t_fused, t_seq, t_seq / t_fused);
  std::printf("workspace: %.2f GiB of activations and scratch\n", double(e->work.size()) * 4 / (1 << 30));
  te_engine_destroy(e);
  return 0;
}
