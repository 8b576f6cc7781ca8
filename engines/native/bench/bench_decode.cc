// bench_decode.cc — sampler step timings on Qwen3-0.6B dimensions (random weights in memory): prefill
// tokens/s, decode ms per step at several concurrencies, and 8 distinct adapters against the base
// model in one batch. A quick C++ companion of bench/sampling.ts (no Node, no model files).
//   bench_decode [--layers N] [--threads N] [--steps N] [--backend auto|cpu|cpu-builtin]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "model/engine_impl.h"

using namespace tuft;
using namespace tuft::bench;

namespace {

std::vector<int32_t> prompt(int n, int salt) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) p[size_t(i)] = int32_t((i * 7919 + salt * 104729 + 17) % 150000);
  return p;
}

// Submits one request per entry of `adapters` (nullptr: base), runs steps until all finish.
// Returns the seconds of the steps after the first (decode only when prompts are short).
struct Run {
  double first, rest;
  int steps;
};
Run run(te_engine *e, const std::vector<const char *> &adapters, int P, int D, int salt) {
  std::vector<std::vector<int32_t>> ps;
  for (size_t i = 0; i < adapters.size(); i++) ps.push_back(prompt(P, salt + int(i)));
  for (size_t i = 0; i < adapters.size(); i++) {
    te_sample_request r{};
    r.adapter_id = adapters[i], r.prompt = ps[i].data(), r.prompt_len = P, r.num_samples = 1, r.max_tokens = D;
    r.temperature = 0, r.top_p = 1;
    uint64_t h;
    if (te_sample_submit(e, &r, &h) != TE_OK) {
      std::fprintf(stderr, "submit: %s\n", te_last_error());
      std::exit(1);
    }
  }
  Run out{0, 0, 0};
  int active = 1;
  for (int s = 0; active > 0; s++) {
    auto t0 = Clock::now();
    if (te_sample_step(e, &active) != TE_OK) {
      std::fprintf(stderr, "step: %s\n", te_last_error());
      std::exit(1);
    }
    double dt = seconds_since(t0);
    if (s == 0) out.first = dt;
    else out.rest += dt, out.steps++;
  }
  uint64_t h;
  while (te_sample_next_finished(e, &h) == TE_OK) te_sample_release(e, h);
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int layers = 28, threads = 0, D = 8;
  std::string backend = "auto";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--layers") layers = std::atoi(argv[i + 1]);
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--steps") D = std::max(2, std::atoi(argv[i + 1]));
    else if (a == "--backend") backend = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: bench_decode [--layers N] [--threads N] [--steps N] [--backend NAME]\n");
      return 2;
    }
  }
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  Config c = qwen3_06b();
  c.L = layers;
  Model m;
  if (model_init_random(&m, c, 1, 2048) != TE_OK) return 1;
  te_engine_options o{threads, 64, 2048, nullptr};
  te_engine *e = nullptr;
  o.backend = backend.c_str();
  if (engine_create_from_model(std::move(m), &o, &e) != TE_OK) {
    std::fprintf(stderr, "engine: %s\n", te_last_error());
    return 1;
  }
  te_model_info info;
  te_engine_info(e, &info);
  std::printf("bench_decode: %d threads, backend %s (%s), Qwen3-0.6B dimensions with %d of 28 layers\n", threads,
              info.backend, info.device, layers);
  std::vector<std::string> ids;
  for (int i = 0; i < 8; i++) {
    ids.push_back("s" + std::to_string(i));
    te_lora_config lc{16, 32.f, uint64_t(i), 1, 1, 0};
    if (te_adapter_create(e, ids.back().c_str(), &lc) != TE_OK) return 1;
  }
  run(e, {nullptr}, 8, 2, 0);  // warm-up
  Run pf = run(e, {nullptr}, 256, 1, 1);
  std::printf("prefill 256 tokens: %.1f tokens/s (%.3f s)\n", 256 / pf.first, pf.first);
  for (int cc : {1, 8, 32}) {
    std::vector<const char *> ad(size_t(cc), nullptr);
    Run r = run(e, ad, 16, D, 100);
    std::printf("decode c=%-2d %8.1f tokens/s  %7.1f ms per step\n", cc, cc * r.steps / r.rest, 1000 * r.rest / r.steps);
  }
  std::vector<const char *> base(8, nullptr), mixed;
  for (auto &id : ids) mixed.push_back(id.c_str());
  for (int rep = 0; rep < 2; rep++) {
    Run b = run(e, base, 16, D, 200), x = run(e, mixed, 16, D, 200);
    std::printf("8 adapters: %.1f ms per step vs base %.1f ms (%+.1f%%)\n", 1000 * x.rest / x.steps,
                1000 * b.rest / b.steps, 100 * (x.rest / x.steps / (b.rest / b.steps) - 1));
  }
  te_engine_destroy(e);
  return 0;
}
