// bench_profile.cc — where one training step's time goes inside the engine: forward_backward +
// optim_step on random weights, every backend op timed through a copy of the backend's table whose
// entries wrap the real ones (the engine runs unchanged), the linear and LoRA ops split by their
// (in → out) shape. What no op accounts for (validation, row layout, loss bookkeeping) is printed as
// "outside ops". Shapes: `small` (the end-to-end bench shape: Qwen3 architecture, hidden 512,
// 8 layers) or `0.6b` (Qwen3-0.6B dimensions), batch × tokens per step, one rank-32 adapter on every
// target. The table is the best of --reps steps (the step with the least wall time), in wall and in
// process CPU seconds (all threads): on a shared machine the CPU column moves less.
// With --decode D the step profiled is the sampler's instead: --batch requests of --tokens prompt
// tokens each are prefilled in one step, then D decode steps of one token per request are timed
// together (greedy, rank-32 adapter); the table splits those D steps (the LM head is linear_forward
// 512→V or 1024→V, token choice is "outside ops").
//   bench_profile [--model small|0.6b] [--layers N] [--batch B] [--tokens T] [--threads N] [--reps N]
//                 [--decode D] [--backend auto|cpu|cpu-builtin]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "model/engine_impl.h"

using namespace tuft;
using namespace tuft::bench;

namespace {

struct Stat {
  double seconds = 0, cpu = 0;  // wall; CPU of every thread of the process (a loaded machine inflates wall)
  int calls = 0;
};
std::map<std::string, Stat> g_stats;  // by op (and shape); the engine thread is the only writer
BackendOps g_real;                    // the backend's own table

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// When an op started: wall clock and process CPU time.
struct Start {
  Clock::time_point wall = Clock::now();
  double cpu = cpu_now();
};

void record(const std::string &key, const Start &t0) {
  Stat &s = g_stats[key];
  s.seconds += seconds_since(t0.wall);
  s.cpu += cpu_now() - t0.cpu;
  s.calls++;
}

// A wrapper for the table entry M: times the real entry under the op's name.
template <auto M>
struct Timed;
template <class... A, te_status (*BackendOps::*M)(Backend &, A...)>
struct Timed<M> {
  static const char *name;
  static te_status call(Backend &be, A... a) {
    Start t0;
    te_status s = (g_real.*M)(be, a...);
    record(name, t0);
    return s;
  }
};
template <class... A, te_status (*BackendOps::*M)(Backend &, A...)>
const char *Timed<M>::name = "";

#define TIME_OP(field)                                      \
  do {                                                      \
    Timed<&BackendOps::field>::name = #field;               \
    ops.field = &Timed<&BackendOps::field>::call;           \
  } while (0)

std::string dims(const char *op, int in, int out) { return std::string(op) + " " + std::to_string(in) + "→" + std::to_string(out); }

te_status linear_forward(Backend &be, float *y, int ldy, const float *x, int ldx, const float *W, const float *bias,
                         int N, int in, int out) {
  Start t0;
  te_status s = g_real.linear_forward(be, y, ldy, x, ldx, W, bias, N, in, out);
  record(dims("linear_forward", in, out), t0);
  return s;
}
te_status linear_backward(Backend &be, float *dx, int lddx, const float *dy, int lddy, const float *W, int N, int in,
                          int out, float beta) {
  Start t0;
  te_status s = g_real.linear_backward(be, dx, lddx, dy, lddy, W, N, in, out, beta);
  record(dims("linear_backward", in, out), t0);
  return s;
}
te_status lora_forward(Backend &be, float *y, int ldy, float *u, int ldu, const float *x, int ldx,
                       const LoraGroup *g, int n_groups, int in, int out) {
  Start t0;
  te_status s = g_real.lora_forward(be, y, ldy, u, ldu, x, ldx, g, n_groups, in, out);
  record(dims("lora_forward", in, out), t0);
  return s;
}
te_status lora_backward(Backend &be, float *dx, int lddx, float *t, const float *dy, int lddy, const float *x,
                        int ldx, const float *u, int ldu, const LoraGroup *g, int n_groups, int in, int out) {
  Start t0;
  te_status s = g_real.lora_backward(be, dx, lddx, t, dy, lddy, x, ldx, u, ldu, g, n_groups, in, out);
  record(dims("lora_backward", in, out), t0);
  return s;
}

BackendOps timed_table(const BackendOps &real) {
  g_real = real;
  BackendOps ops = real;
  TIME_OP(zero);
  TIME_OP(download);
  TIME_OP(attention_forward);
  TIME_OP(attention_backward);
  TIME_OP(rmsnorm_forward);
  TIME_OP(rmsnorm_backward);
  TIME_OP(rope_forward);
  TIME_OP(rope_backward);
  TIME_OP(swiglu_forward);
  TIME_OP(swiglu_backward);
  TIME_OP(embedding_forward);
  TIME_OP(add);
  TIME_OP(copy_rows);
  TIME_OP(head_loss);
  TIME_OP(grad_sq_norm);
  TIME_OP(adamw);
  TIME_OP(kv_write);
  TIME_OP(kv_copy);
  TIME_OP(kv_attention);
  ops.linear_forward = linear_forward;
  ops.linear_backward = linear_backward;
  ops.lora_forward = lora_forward;
  ops.lora_backward = lora_backward;
  return ops;
}

Config small_shape() {
  Config c = qwen3_06b();
  c.C = 512, c.L = 8, c.NH = 8, c.NKV = 4, c.HD = 64, c.FF = 2048, c.max_pos = 4096;
  return c;
}

void fail(const char *what) {
  std::fprintf(stderr, "%s: %s\n", what, te_last_error());
  std::exit(1);
}

// The op table of one profiled step (or run of steps): wall and CPU per op, the rest as "outside ops".
void print_table(const std::map<std::string, Stat> &stats, double total, double cpu) {
  std::vector<std::pair<std::string, Stat>> rows(stats.begin(), stats.end());
  Stat in_ops;
  for (auto &r : rows) in_ops.seconds += r.second.seconds, in_ops.cpu += r.second.cpu;
  rows.push_back({"outside ops", {total - in_ops.seconds, cpu - in_ops.cpu, 0}});
  std::sort(rows.begin(), rows.end(), [](auto &a, auto &b) { return a.second.cpu > b.second.cpu; });
  std::printf("%-34s %9s %7s %9s %7s %7s\n", "op", "wall s", "share", "CPU s", "share", "calls");
  for (auto &r : rows)
    std::printf("%-34s %9.4f %6.1f%% %9.4f %6.1f%% %7d\n", r.first.c_str(), r.second.seconds,
                100 * r.second.seconds / total, r.second.cpu, 100 * r.second.cpu / cpu, r.second.calls);
}

// --decode: `batch` greedy requests of T prompt tokens on adapter "a"; the first step prefills them
// all, the next D steps decode; the best of `reps` runs of those D steps is split by op.
int profile_decode(te_engine *e, const Config &c, const std::string &model, int batch, int T, int D, int threads,
                   int reps, std::mt19937 &rng) {
  std::vector<std::vector<int32_t>> prompts{size_t(batch)};
  for (auto &p : prompts)
    for (int t = 0; t < T; t++) p.push_back(int32_t(rng() % c.V));
  struct Best {
    double wall = 1e30, cpu = 0, prefill = 0;
    std::map<std::string, Stat> stats;
  } best;
  for (int r = 0; r <= reps; r++) {  // the first run warms up (KV cache, workspace, page faults)
    for (auto &p : prompts) {
      te_sample_request q{};
      q.adapter_id = "a", q.prompt = p.data(), q.prompt_len = T, q.num_samples = 1, q.max_tokens = D + 1;
      q.temperature = 0, q.top_p = 1;
      uint64_t h;
      if (te_sample_submit(e, &q, &h) != TE_OK) fail("sample_submit");
    }
    int active = 0;
    const auto tp = Clock::now();
    if (te_sample_step(e, &active) != TE_OK) fail("sample_step");
    const double prefill = seconds_since(tp);
    g_stats.clear();
    Start t0;
    for (int s = 0; s < D; s++)
      if (te_sample_step(e, &active) != TE_OK) fail("sample_step");
    const double wall = seconds_since(t0.wall), cpu = cpu_now() - t0.cpu;
    if (r > 0 && wall < best.wall) best = {wall, cpu, prefill, g_stats};
    uint64_t h;
    while (te_sample_next_finished(e, &h) == TE_OK) te_sample_release(e, h);
  }
  std::printf("model %s: C %d, L %d, NH %d, NKV %d, HD %d, FF %d, V %d; %d requests × %d prompt tokens, LoRA "
              "rank 32 on every target; %d threads, backend %s (%s)\n",
              model.c_str(), c.C, c.L, c.NH, c.NKV, c.HD, c.FF, c.V, batch, T, threads, e->backend->name.c_str(),
              e->backend->device.c_str());
  std::printf("prefill step %.3f s (%.0f tokens/s); %d decode steps %.3f s: %.2f ms per step, %.1f tokens/s; "
              "%.3f CPU s (best of %d)\n\n",
              best.prefill, batch * T / best.prefill, D, best.wall, 1e3 * best.wall / D, batch * D / best.wall,
              best.cpu, reps);
  print_table(best.stats, best.wall, best.cpu);
  te_engine_destroy(e);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string model = "small", backend = "auto";
  int layers = 0, batch = 4, T = 256, threads = 0, reps = 3, decode = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--model") model = argv[i + 1];
    else if (a == "--layers") layers = std::atoi(argv[i + 1]);
    else if (a == "--batch") batch = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--tokens") T = std::max(2, std::atoi(argv[i + 1]));
    else if (a == "--threads") threads = std::atoi(argv[i + 1]);
    else if (a == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--decode") decode = std::max(0, std::atoi(argv[i + 1]));
    else if (a == "--backend") backend = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: bench_profile [--model small|0.6b] [--layers N] [--batch B] [--tokens T] "
                           "[--threads N] [--reps N] [--decode D] [--backend auto|cpu|cpu-builtin]\n");
      return 2;
    }
  }
  if (model != "small" && model != "0.6b") {
    std::fprintf(stderr, "--model is small or 0.6b\n");
    return 2;
  }
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  Config c = model == "small" ? small_shape() : qwen3_06b();
  if (layers > 0) c.L = layers;

  Model m;
  if (model_init_random(&m, c, 1, std::max(T, 256)) != TE_OK) fail("model");
  te_engine_options o{threads, 64, std::max(T + decode, 256), backend.c_str()};
  te_engine *e = nullptr;
  if (engine_create_from_model(std::move(m), &o, &e) != TE_OK) fail("engine");
  te_lora_config lc{32, 32.f, 1, 1, 1, 1};
  if (te_adapter_create(e, "a", &lc) != TE_OK) fail("adapter");
  const BackendOps timed = timed_table(*e->backend->op);
  e->backend->op = &timed;

  std::mt19937 rng(7);
  if (decode > 0) return profile_decode(e, c, model, batch, T, decode, threads, reps, rng);
  const size_t nb = size_t(batch);
  std::vector<std::vector<int32_t>> tok(nb), tgt(nb);
  std::vector<std::vector<float>> w(nb, std::vector<float>(size_t(T), 1.f));
  std::vector<double> loss(nb);
  std::vector<te_train_item> items(nb);
  for (int b = 0; b < batch; b++) {
    for (int t = 0; t < T; t++) tok[size_t(b)].push_back(int32_t(rng() % c.V)), tgt[size_t(b)].push_back(int32_t(rng() % c.V));
    te_train_item &it = items[size_t(b)];
    std::memset(&it, 0, sizeof it);
    it.adapter_id = "a", it.tokens = tok[size_t(b)].data(), it.n_tokens = T, it.targets = tgt[size_t(b)].data(), it.k = 1;
    it.loss = TE_LOSS_CROSS_ENTROPY, it.weights = w[size_t(b)].data(), it.out_loss = &loss[size_t(b)];
  }
  const te_adam_params adam{1e-4f, 0.9f, 0.95f, 1e-8f, 0.f, 1.f};

  struct Step {
    double fb, opt, cpu;
    std::map<std::string, Stat> stats;
  };
  Step best{1e30, 0, 0, {}};
  for (int r = 0; r <= reps; r++) {  // the first step warms up (workspace, page faults)
    g_stats.clear();
    Start t0;
    if (te_forward_backward(e, items.data(), batch) != TE_OK) fail("forward_backward");
    const double fb = seconds_since(t0.wall);
    const auto t1 = Clock::now();
    if (te_optim_step(e, "a", &adam, nullptr, nullptr) != TE_OK) fail("optim_step");
    const double opt = seconds_since(t1), cpu = cpu_now() - t0.cpu;
    if (r > 0 && fb + opt < best.fb + best.opt) best = {fb, opt, cpu, g_stats};
  }

  const double total = best.fb + best.opt;
  std::printf("model %s: C %d, L %d, NH %d, NKV %d, HD %d, FF %d, V %d; %d × %d tokens, LoRA rank 32 on every "
              "target; %d threads, backend %s (%s)\n",
              model.c_str(), c.C, c.L, c.NH, c.NKV, c.HD, c.FF, c.V, batch, T, threads, e->backend->name.c_str(),
              e->backend->device.c_str());
  std::printf("step %.3f s = forward_backward %.3f s + optim_step %.3f s: %.1f tokens/s; %.3f CPU s (best of %d)\n\n",
              total, best.fb, best.opt, batch * T / total, best.cpu, reps);
  print_table(best.stats, total, best.cpu);
  te_engine_destroy(e);
  return 0;
}
