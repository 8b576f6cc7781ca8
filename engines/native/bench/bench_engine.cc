// bench_engine.cc — training throughput of the native engine on Qwen3-0.6B dimensions (random
// weights built in memory): forward_backward tokens/s at T = 128 and 512 for batch 1 and 8, achieved
// GFLOP/s against the GEMM peak measured in the same run, and 8 adapters' short data (16, 32, 64
// tokens each) fused in one pass versus one pass after another. Every figure is the best of --reps
// runs with the worst beside it, since the machine may be shared, and the shapes also give their
// GFLOP per CPU second against the peak's, which other jobs move far less. Prints figures; asserts
// nothing.
// The shapes run at as many layers as the time budget allows; the fused comparison runs on the full
// 28 layers unless told otherwise (--fused-layers, or --layers alone), memory permitting, since the
// share of the per-layer weights in each call decides what fusing saves. --backend picks the engine's
// backend (default auto), whose own GEMM gives the peak.
//   bench_engine [--layers N] [--fused-layers N] [--threads N] [--reps N] [--budget SECONDS]
//                [--only shapes|fused] [--backend auto|cpu|cpu-builtin]
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/registry.h"
#include "bench_common.h"
#include "model/engine_impl.h"

using namespace tuft;
using namespace tuft::bench;

namespace {

constexpr int FUSED_T[] = {16, 32, 64};  // tokens per adapter in the fused-vs-sequential comparison

// Model FLOPs of one forward_backward: GEMMs with the frozen weights run forward and once backward
// (input gradients only); attention is 2 T²-products forward and 5 backward (scores recomputed).
double fb_flops(const Config &c, int B, int T) {
  double lin = 2.0 * (double(c.C) * c.QKV() + double(c.Q()) * c.C + double(c.C) * 2 * c.FF + double(c.FF) * c.C);
  double head = 2.0 * c.C * double(c.V);
  double att = 2.0 * c.NH * c.HD * (double(T) * (T + 1) / 2);
  return 2.0 * B * T * (c.L * lin + head) + 7.0 * B * c.L * att;
}

// Best and worst of `reps` timed 2048³ products after a warm-up, through the backend's own GEMM: the
// fastest kernel the engine has (with AVX-512, the mid-size kernel in row blocks, which also runs the
// training shapes' large products), so that "of peak" is a fraction of what this machine can do, not
// of a slower library's sgemm (against OpenBLAS's the training figures read above 100%). The machine
// may be shared, so the spread says how noisy every other figure of the run is.
// Process CPU seconds (every thread): on a machine shared with other jobs, work per CPU second moves
// far less than work per wall second.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

struct Peak {
  double best, worst;
  double per_cpu;  // GFLOP per CPU second of the fastest run
};
Peak sgemm_peak_gflops(Backend &be, int reps) {
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.01f), b(size_t(n) * n, 0.02f), c(size_t(n) * n);
  be.op->gemm(be, false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);  // warm up
  double lo = 1e30, hi = 0, cpu_lo = 1e30;
  for (int r = 0; r < reps; r++) {
    auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    be.op->gemm(be, false, true, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
    double t = seconds_since(t0);
    lo = std::min(lo, t), hi = std::max(hi, t), cpu_lo = std::min(cpu_lo, cpu_seconds() - c0);
  }
  const double flop = 2.0 * n * n * double(n);
  return {flop / lo / 1e9, flop / hi / 1e9, flop / cpu_lo / 1e9};
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

struct Timing {
  double best, worst;
  double cpu;  // CPU seconds of the fastest run
};
// Best and worst of reps runs after one warm-up (which also grows the workspace).
Timing time_call(te_engine *e, std::vector<te_train_item> &items, int reps) {
  if (te_forward_backward(e, items.data(), int(items.size())) != TE_OK) {
    std::fprintf(stderr, "forward_backward failed: %s\n", te_last_error());
    std::exit(1);
  }
  Timing t{1e30, 0, 0};
  for (int r = 0; r < reps; r++) {
    auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    te_forward_backward(e, items.data(), int(items.size()));
    double dt = seconds_since(t0);
    if (dt < t.best) t.cpu = cpu_seconds() - c0;
    t.best = std::min(t.best, dt), t.worst = std::max(t.worst, dt);
  }
  return t;
}

// The same items one call each (8 tenants served one after another), best and worst of reps.
Timing time_each(te_engine *e, std::vector<te_train_item> &items, int reps) {
  for (auto &it : items) te_forward_backward(e, &it, 1);  // warm-up
  Timing t{1e30, 0, 0};
  for (int r = 0; r < reps; r++) {
    auto t0 = Clock::now();
    for (auto &it : items) te_forward_backward(e, &it, 1);
    double dt = seconds_since(t0);
    t.best = std::min(t.best, dt), t.worst = std::max(t.worst, dt);
  }
  return t;
}

// A random-weight engine of `layers` layers with 8 rank-32 adapters on every target, a0 … a7.
te_engine *make_engine(Config c, int layers, int threads, const std::string &backend, std::vector<std::string> *ids) {
  c.L = layers;
  Model m;
  auto t0 = Clock::now();
  if (model_init_random(&m, c, 1, 4096) != TE_OK) {
    std::fprintf(stderr, "model: %s\n", te_last_error());
    std::exit(1);
  }
  te_engine_options o{threads, 64, 4096, backend.c_str()};
  te_engine *e = nullptr;
  if (engine_create_from_model(std::move(m), &o, &e) != TE_OK) {
    std::fprintf(stderr, "engine: %s\n", te_last_error());
    std::exit(1);
  }
  std::printf("model: Qwen3-0.6B dimensions (C 1024, NH 16, NKV 8, HD 128, FF 3072, V 151936, tied), %d layers, "
              "random weights in %.1f s\n",
              layers, seconds_since(t0));
  ids->clear();
  for (int i = 0; i < 8; i++) {
    ids->push_back("a" + std::to_string(i));
    te_lora_config lc{32, 64.f, uint64_t(i), 1, 1, 1};
    if (te_adapter_create(e, ids->back().c_str(), &lc) != TE_OK) std::exit(1);
  }
  return e;
}

}  // namespace

int main(int argc, char **argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured
  int layers = 0, fused_layers = 0, threads = 0, reps = 2;
  double budget = 120;
  std::string only;              // "shapes" or "fused": run one part
  std::string backend = "auto";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--layers") layers = std::atoi(argv[i + 1]);
    else if (a == "--fused-layers") fused_layers = std::atoi(argv[i + 1]);
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--budget") budget = std::atof(argv[i + 1]);
    else if (a == "--only") only = argv[i + 1];
    else if (a == "--backend") backend = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: bench_engine [--layers N] [--fused-layers N] [--threads N] [--reps N] "
                   "[--budget SECONDS] [--only shapes|fused] [--backend auto|cpu|cpu-builtin]\n");
      return 2;
    }
  }
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  Pool pool(threads);
  PoolScope scope(&pool);
  BackendPtr be;
  if (backend_create(backend.c_str(), nullptr, 0, &be) != TE_OK) {
    std::fprintf(stderr, "backend: %s\n", te_last_error());
    return 2;
  }

  Config c = qwen3_06b();
  Peak p0 = sgemm_peak_gflops(*be, 5);
  double peak = p0.best;
  std::printf("machine: %d threads, backend %s (%s), GEMM peak %.1f GFLOP/s (2048³ through the engine's GEMM, best of 5 now; worst %.1f: "
              "the spread is the machine's noise)\n",
              threads, be->name.c_str(), be->device.c_str(), p0.best, p0.worst);
  std::printf("GEMM peak per CPU second: %.1f GFLOP (the \"of peak/CPU\" column's yardstick)\n", p0.per_cpu);

  const int shapes[4][2] = {{1, 128}, {8, 128}, {1, 512}, {8, 512}};
  const double mem = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  // Bytes per layer: its weights plus its activations for `rows` rows.
  auto layer_bytes = [&](int rows) {
    return double(layer_acts_floats(c, rows, 32)) * 4 + double(c.C) * (c.QKV() + c.Q() + 3 * c.FF) * 4;
  };
  const int fused_depth = fused_layers > 0 ? fused_layers : layers > 0 ? layers : 28;
  std::vector<std::string> ids;
  double gf_512[2] = {0, 0};  // T 512 at batch 1 and 8
  int shape_layers = 0;

  if (only != "fused") {
    if (layers <= 0) {
      // Fit the shapes in the time budget (at an assumed 40% of peak) and in half of physical memory;
      // the LM head (V = 151936) costs the same whatever the depth.
      auto run_flops = [&](int L) {
        Config k = c;
        k.L = L;
        double f = 0;
        for (auto &s : shapes) f += (1 + reps) * fb_flops(k, s[0], s[1]);
        return f;
      };
      double rate = 0.4 * peak * 1e9, head = run_flops(0), per = run_flops(1) - head;
      int by_time = int((budget * rate - head) / per), by_mem = int(0.5 * mem / layer_bytes(8 * 512));
      layers = std::max(1, std::min({28, by_time, by_mem}));
      if (layers < 28)
        std::printf("NOTE: shapes on %d of 28 layers, to stay near the %.0f s budget (all 28 estimated at %.0f s at "
                    "40%% of peak) and within half of %.0f GiB memory; pass --layers 28 for the full model\n",
                    layers, budget, run_flops(28) / rate, mem / (1 << 30));
    }
    te_engine *e = make_engine(c, layers, threads, backend, &ids);
    shape_layers = layers;
    Config k = c;
    k.L = layers;
    std::printf("\nforward_backward, LoRA rank 32 on every target, cross-entropy (model FLOPs: frozen-weight GEMMs "
                "forward + input gradients, attention)\n");
    std::printf("%6s %6s %10s %10s %12s %10s %10s %10s %12s\n", "batch", "T", "best s", "worst s", "tokens/s",
                "GFLOP/s", "of peak", "CPU s", "of peak/CPU");
    for (auto &s : shapes) {
      std::vector<std::string> ad(size_t(s[0]), ids[0]);
      Items x = make_items(ad, s[1], 7);
      Timing t = time_call(e, x.items, reps);
      double gf = fb_flops(k, s[0], s[1]) / t.best / 1e9;
      if (s[1] == 512) gf_512[s[0] == 8] = gf;
      // GFLOP per CPU second against the peak's: what a loaded machine leaves of the wall-time fraction
      // (it does not see threads waiting on each other, which the wall-time fraction does).
      const double per_cpu = fb_flops(k, s[0], s[1]) / t.cpu / 1e9;
      std::printf("%6d %6d %10.3f %10.3f %12.1f %10.1f %9.0f%% %10.2f %11.0f%%\n", s[0], s[1], t.best, t.worst,
                  s[0] * s[1] / t.best, gf, 100 * gf / peak, t.cpu, 100 * per_cpu / p0.per_cpu);
    }
    std::printf("workspace: %.2f GiB of activations and scratch\n", double(e->work.size()) * 4 / (1 << 30));
    te_engine_destroy(e);
  }

  // 8 tenants with one short datum each: one fused call against 8 calls. Each call streams every
  // frozen weight (forward and backward) and the LM head, so the shorter the data the more fusion saves;
  // how much depends on the share of the layers against the head, so this runs on the full model.
  if (only != "shapes") {
    const int by_mem = int(0.5 * mem / layer_bytes(8 * FUSED_T[2]));
    const int depth = std::max(1, std::min(fused_depth, by_mem));
    std::printf("\n");
    if (depth < fused_depth)
      std::printf("NOTE: fused comparison on %d layers, not %d, to stay within half of %.0f GiB memory\n", depth,
                  fused_depth, mem / (1 << 30));
    te_engine *e = make_engine(c, depth, threads, backend, &ids);
    std::printf("8 adapters x 1 datum each, %d of 28 layers%s: one fused call vs one call per adapter (target: "
                "fused >= 2x faster)\n",
                depth, depth == 28 ? " (the full model)" : "");
    std::printf("%6s %12s %12s %12s %12s %10s\n", "T", "fused best", "fused worst", "seq best", "seq worst",
                "speed-up");
    for (int T : FUSED_T) {
      Items x = make_items(ids, T, 9);
      Timing f = time_call(e, x.items, reps), q = time_each(e, x.items, reps);
      std::printf("%6d %12.3f %12.3f %12.3f %12.3f %9.2fx\n", T, f.best, f.worst, q.best, q.worst, q.best / f.best);
    }
    std::printf("workspace: %.2f GiB of activations and scratch\n", double(e->work.size()) * 4 / (1 << 30));
    te_engine_destroy(e);
  }
  Peak p1 = sgemm_peak_gflops(*be, 3);
  std::printf("\nGEMM peak again at the end: best %.1f, worst %.1f GFLOP/s (fractions above use %.1f)\n", p1.best,
              p1.worst, peak);
  const double best_peak = std::max(peak, p1.best);
  for (int b8 = 0; b8 < 2; b8++)
    if (gf_512[b8] > 0)
      std::printf("batch %d x T 512, %d of 28 layers: %.1f GFLOP/s = %.0f%% of the best peak seen in this run (%.1f; "
                  "target >= 60%% with all 28)\n",
                  b8 ? 8 : 1, shape_layers, gf_512[b8], 100 * gf_512[b8] / best_peak, best_peak);
  return 0;
}
