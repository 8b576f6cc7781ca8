// test_engine.cc — engine behaviour beyond the golden values: a fused multi-adapter pass equals
// separate passes, gradients accumulate (two half batches = one full batch), LM-head blocking does
// not change results, bad input is rejected before any state changes, save/load/export/import/
// snapshot round trips, sharded checkpoints and loading errors.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "common/json.h"
#include "model/engine_impl.h"
#include "model/safetensors.h"
#include "test_util.h"

using namespace tuft;

namespace {

std::string g_model;  // the qwen3 fixture model (fp32)

struct Datum {
  const char *adapter;
  std::vector<int32_t> tokens, targets;
  std::vector<float> weights, q, adv;
  te_loss loss = TE_LOSS_CROSS_ENTROPY;
  int k = 1;
  bool forward_only = false;
};

std::vector<Datum> make_data() {
  std::mt19937 rng(5);
  auto seq = [&](int T) {
    std::vector<int32_t> v(static_cast<size_t>(T));
    for (auto &x : v) x = int32_t(rng() % 1024);
    return v;
  };
  auto fl = [&](int T, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(static_cast<size_t>(T));
    for (auto &x : v) x = u(rng);
    return v;
  };
  std::vector<Datum> d;
  const char *ads[] = {"a", "b", "a", nullptr, "c", "b", "a"};
  const int lens[] = {9, 5, 12, 6, 7, 3, 4};
  for (int i = 0; i < 7; i++) {
    Datum x;
    x.adapter = ads[i];
    x.tokens = seq(lens[i]);
    x.targets = seq(lens[i]);
    x.weights = fl(lens[i], -0.5f, 1.f);
    x.q = fl(lens[i], -9.f, -6.f);
    x.adv = fl(lens[i], -1.f, 1.f);
    d.push_back(x);
  }
  d[1].loss = TE_LOSS_PPO;
  d[4].loss = TE_LOSS_DRO;
  d[5].loss = TE_LOSS_IMPORTANCE_SAMPLING;
  d[6].forward_only = true;
  d[2].k = 2;  // top-K cross-entropy
  d[2].targets.resize(d[2].tokens.size() * 2, 7);
  d[2].weights.resize(d[2].tokens.size() * 2, 0.25f);
  d[3].forward_only = true;  // base model
  return d;
}

struct Out {
  std::vector<std::vector<float>> lp;
  std::vector<double> loss;
};

te_status run(te_engine *e, const std::vector<Datum> &d, const std::vector<int> &which, Out *out) {
  std::vector<te_train_item> items(which.size());
  out->lp.resize(d.size());
  out->loss.resize(d.size());
  for (size_t j = 0; j < which.size(); j++) {
    const Datum &x = d[size_t(which[j])];
    te_train_item &it = items[j];
    std::memset(&it, 0, sizeof it);
    it.adapter_id = x.adapter, it.tokens = x.tokens.data(), it.n_tokens = int(x.tokens.size());
    it.targets = x.targets.data(), it.k = x.k, it.loss = x.loss, it.weights = x.weights.data();
    it.logprobs = x.q.data(), it.advantages = x.adv.data(), it.forward_only = x.forward_only;
    it.clip_low_threshold = 0.8f, it.clip_high_threshold = 1.2f, it.beta = 0.05f;
    out->lp[size_t(which[j])].assign(x.tokens.size() * size_t(x.k), NAN);
    it.out_logprobs = out->lp[size_t(which[j])].data();
    it.out_loss = &out->loss[size_t(which[j])];
  }
  return te_forward_backward(e, items.data(), int(items.size()));
}

te_engine *engine_with_adapters(const char *backend = nullptr) {
  te_engine_options o{2, 16, 64, backend};
  te_engine *e = nullptr;
  if (!tt::ok_status(te_engine_create(g_model.c_str(), &o, &e), "create engine")) return nullptr;
  const char *ids[] = {"a", "b", "c"};
  const int ranks[] = {4, 8, 2};
  for (int i = 0; i < 3; i++) {
    te_lora_config lc{ranks[i], 2.f * ranks[i], uint64_t(100 + i), 1, 1, i != 1};
    tt::ok_status(te_adapter_create(e, ids[i], &lc), std::string("create adapter ") + ids[i]);
    // Non-zero B so that every adapter changes the outputs.
    Adapter *a = find_adapter(e, ids[i]);
    std::mt19937 rng{unsigned(i)};
    std::normal_distribution<float> nd(0.f, 0.2f);
    for (const auto &en : a->entries)
      if (en.is_B)
        for (size_t k = 0; k < size_t(en.rows) * en.cols; k++) a->params.data()[en.offset + k] = nd(rng);
  }
  return e;
}

double max_rel(const float *x, const float *y, size_t n) { return tt::rel_err(x, y, n); }

void compare_outputs(const Out &x, const Out &y, const std::vector<int> &which, const std::string &what) {
  double lp = 0, loss = 0;
  for (int i : which) {
    for (size_t t = 0; t < x.lp[size_t(i)].size(); t++)
      lp = std::max(lp, double(std::fabs(x.lp[size_t(i)][t] - y.lp[size_t(i)][t])));
    loss = std::max(loss, std::fabs(x.loss[size_t(i)] - y.loss[size_t(i)]) / std::max(1.0, std::fabs(y.loss[size_t(i)])));
  }
  tt::near(lp, 0, 2e-5, 0, what + ": logprobs");
  tt::near(loss, 0, 2e-5, 0, what + ": losses");
}

void compare_grads(te_engine *x, te_engine *y, const std::string &what) {
  for (const char *id : {"a", "b", "c"}) {
    Adapter *p = find_adapter(x, id), *q = find_adapter(y, id);
    tt::near(max_rel(p->grads.data(), q->grads.data(), p->n_params), 0, 1e-4, 0, what + ": gradients of " + id);
  }
}

void test_fused_vs_separate() {
  auto d = make_data();
  std::vector<int> all = {0, 1, 2, 3, 4, 5, 6};
  te_engine *fused = engine_with_adapters(), *sep = engine_with_adapters(), *halves = engine_with_adapters(),
            *blocks = engine_with_adapters();
  if (!fused || !sep || !halves || !blocks) return;
  Out f, s, h, b;
  tt::ok_status(run(fused, d, all, &f), "fused pass");
  for (int i : all) tt::ok_status(run(sep, d, {i}, &s), "separate pass " + std::to_string(i));
  compare_outputs(f, s, all, "fused vs separate");
  compare_grads(fused, sep, "fused vs separate");
  tt::ok_status(run(halves, d, {0, 1, 2}, &h), "first half");
  tt::ok_status(run(halves, d, {3, 4, 5, 6}, &h), "second half");
  compare_grads(fused, halves, "two half batches vs one batch");
  blocks->head_rows = 5;  // LM head in blocks of 5 rows: blocks straddle items and adapters
  tt::ok_status(run(blocks, d, all, &b), "blocked head pass");
  compare_outputs(f, b, all, "head blocks of 5 rows vs one block");
  compare_grads(fused, blocks, "head blocks of 5 rows vs one block");
  // forward_only items and the base model accumulate nothing; an adapter's own rows do.
  te_engine *fo = engine_with_adapters();
  Out o;
  tt::ok_status(run(fo, d, {3, 6}, &o), "forward-only pass");
  bool zero = true;
  for (const char *id : {"a", "b", "c"}) {
    Adapter *a = find_adapter(fo, id);
    for (size_t i = 0; i < a->n_params; i++) zero = zero && a->grads.data()[i] == 0.f;
  }
  tt::check(zero, "forward_only items accumulate no gradient");
  for (te_engine *e : {fused, sep, halves, blocks, fo}) te_engine_destroy(e);
}

void test_bad_input() {
  te_engine *e = engine_with_adapters();
  if (!e) return;
  auto d = make_data();
  Out o;
  tt::ok_status(run(e, d, {0, 1}, &o), "good pass");
  std::vector<float> ga(find_adapter(e, "a")->grads.data(), find_adapter(e, "a")->grads.data() + find_adapter(e, "a")->n_params);
  auto expect = [&](std::vector<Datum> dd, te_status code, const char *needle, const std::string &what) {
    Out x;
    te_status st = run(e, dd, {0, 1, 2, 3, 4}, &x);
    tt::check(st == code, what + ": status " + std::to_string(int(st)));
    tt::check(std::strstr(te_last_error(), needle) != nullptr, what + ": message '" + te_last_error() + "' names " + needle);
  };
  auto bad = d;
  bad[2].tokens[3] = 1024;
  expect(bad, TE_EINVAL, "item 2", "token id out of range");
  bad = d, bad[1].targets[0] = -1;
  expect(bad, TE_EINVAL, "item 1", "negative target");
  bad = d, bad[4].adv[2] = NAN;
  expect(bad, TE_EINVAL, "item 4", "NaN advantage");
  bad = d, bad[0].weights[1] = INFINITY;
  expect(bad, TE_EINVAL, "item 0", "Inf weight");
  bad = d, bad[3].tokens.resize(65, 1), bad[3].targets.resize(65, 1), bad[3].weights.resize(65, 1.f);
  expect(bad, TE_EINVAL, "item 3", "sequence over max_seq_len");
  bad = d, bad[2].adapter = "nope";
  expect(bad, TE_ENOTFOUND, "item 2", "unknown adapter");
  bad = d, bad[1].k = 2, bad[1].targets.resize(bad[1].tokens.size() * 2, 1);
  expect(bad, TE_EINVAL, "item 1", "RL loss with top-K targets");
  bad = d, bad[0].weights.clear(), bad[0].weights.shrink_to_fit();
  {
    // weights == NULL for cross_entropy
    std::vector<te_train_item> it(1);
    std::memset(it.data(), 0, sizeof(te_train_item));
    it[0].adapter_id = "a", it[0].tokens = d[0].tokens.data(), it[0].n_tokens = int(d[0].tokens.size());
    it[0].targets = d[0].targets.data(), it[0].k = 1, it[0].loss = TE_LOSS_CROSS_ENTROPY;
    tt::check(te_forward_backward(e, it.data(), 1) == TE_EINVAL && std::strstr(te_last_error(), "weights"),
              "cross_entropy without weights is rejected");
    it[0].loss = te_loss(9), it[0].weights = d[0].weights.data();
    tt::check(te_forward_backward(e, it.data(), 1) == TE_EINVAL, "unknown loss is rejected");
  }
  Adapter *a = find_adapter(e, "a");
  tt::check(std::memcmp(ga.data(), a->grads.data(), ga.size() * sizeof(float)) == 0,
            "rejected calls leave accumulated gradients untouched");
  // Inference-only adapters train nothing.
  tt::ok_status(te_adapter_snapshot(e, "a", "snap"), "snapshot");
  auto dd = d;
  dd[0].adapter = "snap";
  tt::check(run(e, dd, {0}, &o) == TE_EINVAL, "training an inference-only adapter is rejected");
  // Adapter management errors.
  te_lora_config big{17, 1.f, 1, 1, 1, 1};
  tt::check(te_adapter_create(e, "big", &big) == TE_EINVAL, "rank over max_lora_rank is rejected");
  te_lora_config ok{2, 1.f, 1, 1, 0, 0};
  tt::check(te_adapter_create(e, "a", &ok) == TE_EINVAL, "duplicate adapter id is rejected");
  tt::check(te_adapter_drop(e, "zzz") == TE_ENOTFOUND, "dropping an unknown adapter");
  te_adam_params ap{1e-3f, 0.9f, 0.95f, 1e-8f, 0.f, 0.f};
  tt::check(te_optim_step(e, "zzz", &ap, nullptr, nullptr) == TE_ENOTFOUND, "optim_step on an unknown adapter");
  ap.beta1 = NAN;
  tt::check(te_optim_step(e, "a", &ap, nullptr, nullptr) == TE_EINVAL, "optim_step with NaN beta1");
  te_engine_destroy(e);
}

std::string tmpdir(const char *name) {
  char tmpl[256];
  std::snprintf(tmpl, sizeof tmpl, "/tmp/tuft-test-%s-XXXXXX", name);
  char *p = mkdtemp(tmpl);
  return p ? p : "/tmp";
}

void test_state() {
  te_engine *e = engine_with_adapters();
  if (!e) return;
  auto d = make_data();
  Out o;
  te_adam_params ap{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.f};
  tt::ok_status(run(e, d, {0, 2}, &o), "train pass");
  double norm = 0;
  int64_t step = 0;
  tt::ok_status(te_optim_step(e, "a", &ap, &norm, &step), "step 1");
  tt::check(norm > 0 && step == 1, "step 1 returns the norm and the counter");
  Adapter *a = find_adapter(e, "a");
  bool zeroed = true;
  for (size_t i = 0; i < a->n_params; i++) zeroed = zeroed && a->grads.data()[i] == 0.f;
  tt::check(zeroed, "optim_step zeroes the gradients");
  tt::ok_status(run(e, d, {0, 2}, &o), "train pass 2");
  tt::ok_status(te_optim_step(e, "a", &ap, &norm, &step), "step 2");

  std::string dir = tmpdir("state");
  tt::ok_status(te_adapter_save(e, "a", dir.c_str(), 1), "save with optimizer");
  Json cfg;
  tt::ok_status(json_parse_file(dir + "/adapter_config.json", &cfg), "adapter_config.json parses");
  tt::check(cfg.get("r") && cfg.get("r")->num == 4 && cfg.get("lora_alpha")->num == 8 &&
                cfg.get("peft_type")->str == "LORA" && cfg.get("task_type")->str == "CAUSAL_LM" &&
                cfg.get("target_modules")->arr.size() == 8,
            "adapter_config.json has r, lora_alpha, peft_type, task_type, target_modules");

  te_lora_config lc{4, 8.f, 999, 1, 1, 1};
  tt::ok_status(te_adapter_create(e, "r", &lc), "create restore target");
  tt::ok_status(te_adapter_load(e, "r", dir.c_str(), 1), "load with optimizer");
  Adapter *r = find_adapter(e, "r");
  tt::check(r->step == 2, "step counter restored");
  tt::check(std::memcmp(r->params.data(), a->params.data(), a->n_params * 4) == 0 &&
                std::memcmp(r->m.data(), a->m.data(), a->n_params * 4) == 0 &&
                std::memcmp(r->v.data(), a->v.data(), a->n_params * 4) == 0,
            "params and moments restored bit for bit");
  // Both continue identically.
  auto dr = d;
  dr[0].adapter = "r", dr[2].adapter = "r";
  tt::ok_status(run(e, d, {0, 2}, &o), "a pass 3");
  tt::ok_status(run(e, dr, {0, 2}, &o), "r pass 3");
  tt::ok_status(te_optim_step(e, "a", &ap, &norm, &step), "a step 3");
  tt::ok_status(te_optim_step(e, "r", &ap, &norm, &step), "r step 3");
  tt::check(step == 3 && std::memcmp(r->params.data(), a->params.data(), a->n_params * 4) == 0,
            "restored adapter continues exactly like the original");
  tt::ok_status(te_adapter_load(e, "r", dir.c_str(), 0), "load weights only");
  bool fresh = r->step == 0;
  for (size_t i = 0; i < r->n_params; i++) fresh = fresh && r->m.data()[i] == 0.f && r->v.data()[i] == 0.f;
  tt::check(fresh, "weights-only load resets the optimizer");
  te_lora_config other{8, 16.f, 1, 1, 1, 1};
  tt::ok_status(te_adapter_create(e, "r8", &other), "create rank-8 adapter");
  tt::check(te_adapter_load(e, "r8", dir.c_str(), 0) == TE_EINVAL, "loading a rank-4 state into rank 8 fails");
  tt::check(te_adapter_load(e, "r", "/nonexistent", 0) == TE_ENOTFOUND, "loading from a missing directory");

  // Export (PEFT) → import (inference) gives the same outputs; snapshots are frozen copies.
  std::string pdir = tmpdir("peft");
  tt::ok_status(te_adapter_export_peft(e, "a", pdir.c_str()), "export peft");
  tt::check(access((pdir + "/optimizer.safetensors").c_str(), F_OK) != 0, "export writes no optimizer state");
  tt::ok_status(te_adapter_import_peft(e, "imp", pdir.c_str()), "import peft");
  tt::ok_status(te_adapter_snapshot(e, "a", "snap"), "snapshot");
  auto di = d;
  di[0].adapter = "imp", di[0].forward_only = true;
  auto ds = d;
  ds[0].adapter = "snap", ds[0].forward_only = true;
  auto da = d;
  da[0].forward_only = true;
  Out oa, oi, os1, os2;
  tt::ok_status(run(e, da, {0}, &oa), "a forward");
  tt::ok_status(run(e, di, {0}, &oi), "imported forward");
  tt::ok_status(run(e, ds, {0}, &os1), "snapshot forward");
  compare_outputs(oi, oa, {0}, "imported PEFT export vs trained adapter");
  compare_outputs(os1, oa, {0}, "snapshot vs source");
  tt::ok_status(run(e, d, {0}, &o), "a pass 4");
  tt::ok_status(te_optim_step(e, "a", &ap, &norm, &step), "a step 4");
  tt::ok_status(run(e, ds, {0}, &os2), "snapshot forward after a step of its source");
  tt::check(os1.lp[0] == os2.lp[0], "snapshot does not follow later training");
  te_engine_destroy(e);
}

// A fresh adapter is PEFT-initialised: A within ±1/sqrt(in), B zero, outputs equal the base model.
void test_init() {
  te_engine_options o{2, 8, 0, nullptr};
  te_engine *e = nullptr;
  if (!tt::ok_status(te_engine_create(g_model.c_str(), &o, &e), "create engine")) return;
  te_lora_config lc{8, 16.f, 42, 1, 1, 1};
  tt::ok_status(te_adapter_create(e, "n", &lc), "create");
  Adapter *a = find_adapter(e, "n");
  bool ok = true, spread = false;
  for (const auto &en : a->entries) {
    float bound = 1.f / std::sqrt(float(en.cols)), mx = 0;
    for (size_t i = 0; i < size_t(en.rows) * en.cols; i++) {
      float x = a->params.data()[en.offset + i];
      ok = ok && (en.is_B ? x == 0.f : std::fabs(x) <= bound);
      mx = std::max(mx, std::fabs(x));
    }
    if (!en.is_B) spread = spread || mx > 0.9f * bound;
  }
  tt::check(ok && spread, "kaiming-uniform A within 1/sqrt(in), B zero");
  auto d = make_data();
  d[0].adapter = "n", d[0].forward_only = true;
  auto base = d;
  base[0].adapter = nullptr;
  Out x, y;
  tt::ok_status(run(e, d, {0}, &x), "new adapter forward");
  tt::ok_status(run(e, base, {0}, &y), "base forward");
  tt::check(x.lp[0] == y.lp[0], "a new adapter equals the base model");
  te_engine_destroy(e);
}

void test_loading() {
  te_engine *e = nullptr;
  tt::check(te_engine_create("/nonexistent-model", nullptr, &e) == TE_ENOTFOUND && !e, "missing model dir");
  std::string dir = tmpdir("model");
  Json cfg;
  tt::ok_status(json_parse_file(g_model + "/config.json", &cfg), "read config");
  std::string text;
  {
    FILE *f = std::fopen((g_model + "/config.json").c_str(), "rb");
    char buf[4096];
    size_t n = f ? std::fread(buf, 1, sizeof buf, f) : 0;
    if (f) std::fclose(f);
    text.assign(buf, n);
  }
  std::string gpt2 = text;
  gpt2.replace(gpt2.find("Qwen3ForCausalLM"), 16, "GPT2LMHeadModel");
  write_text_durable(dir + "/config.json", gpt2);
  tt::check(te_engine_create(dir.c_str(), nullptr, &e) == TE_EUNSUPPORTED &&
                std::strstr(te_last_error(), "GPT2LMHeadModel"),
            "unsupported architecture is named");

  // Sharded checkpoint: the fixture weights split over two files plus an index.
  write_text_durable(dir + "/config.json", text);
  TensorSet ts;
  tt::ok_status(ts.open_file(g_model + "/model.safetensors"), "open fixture weights");
  std::vector<std::vector<float>> store;
  std::vector<TensorOut> s1, s2;
  std::string index = "{\"metadata\": {}, \"weight_map\": {";
  int i = 0;
  for (const auto &kv : ts.all()) {
    size_t n = 1;
    for (auto x : kv.second.shape) n *= size_t(x);
    store.emplace_back(n);
    ts.read_f32(kv.first, kv.second.shape, store.back().data());
    const char *shard = i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    (i % 2 ? s2 : s1).push_back({kv.first, kv.second.shape, nullptr});
    index += std::string(i ? "," : "") + json_quote(kv.first) + ":" + json_quote(shard);
    i++;
  }
  index += "}}";
  size_t j1 = 0, j2 = 0;
  i = 0;
  for (auto &v : store) (i++ % 2 ? s2[j2++] : s1[j1++]).data = v.data();
  // Drop one tensor to check the error first.
  TensorOut dropped = s2.back();
  s2.pop_back();
  write_safetensors(dir + "/model-00001-of-00002.safetensors", s1, {});
  write_safetensors(dir + "/model-00002-of-00002.safetensors", s2, {});
  write_text_durable(dir + "/model.safetensors.index.json", index);
  tt::check(te_engine_create(dir.c_str(), nullptr, &e) == TE_ENOTFOUND && std::strstr(te_last_error(), dropped.name.c_str()),
            std::string("missing tensor is named: ") + te_last_error());
  s2.push_back(dropped);
  write_safetensors(dir + "/model-00002-of-00002.safetensors", s2, {});
  te_engine *sharded = nullptr, *single = nullptr;
  te_engine_options o{2, 8, 0, nullptr};
  if (tt::ok_status(te_engine_create(dir.c_str(), &o, &sharded), "sharded model loads") &&
      tt::ok_status(te_engine_create(g_model.c_str(), &o, &single), "single-file model loads")) {
    auto d = make_data();
    d[3].forward_only = true;
    Out x, y;
    tt::ok_status(run(sharded, d, {3}, &x), "sharded forward");
    tt::ok_status(run(single, d, {3}, &y), "single forward");
    tt::check(x.lp[3] == y.lp[3], "sharded and single-file weights give identical outputs");
    te_model_info info;
    te_engine_info(single, &info);
    tt::check(std::string(info.backend) == "cpu" && info.n_threads == 2,
              std::string("default backend reported: ") + info.backend);
    tt::check(info.max_position == 512 && info.tie_word_embeddings == 1, "info reflects config.json");
  }
  te_engine_destroy(sharded);
  te_engine_destroy(single);
}

// The backend option: a named backend is reported and gives the default's outputs (to rounding: with
// OpenBLAS the two GEMMs differ); unknown names fail before the model directory is even read.
void test_backends() {
  te_engine *e = engine_with_adapters("cpu-builtin"), *dflt = engine_with_adapters("auto");
  if (!e || !dflt) return;
  te_model_info info;
  te_engine_info(e, &info);
  tt::check(std::string(info.backend) == "cpu-builtin" && std::string(info.device) == "cpu:builtin",
            std::string("cpu-builtin reported: ") + info.backend + " / " + info.device);
  te_engine_info(dflt, &info);
  tt::check(std::string(info.backend) == "cpu", std::string("auto picks cpu: ") + info.backend);
  auto d = make_data();
  Out x, y;
  const std::vector<int> all = {0, 1, 2, 3, 4, 5, 6};
  tt::ok_status(run(e, d, all, &x), "cpu-builtin pass");
  tt::ok_status(run(dflt, d, all, &y), "auto pass");
  compare_outputs(x, y, all, "cpu-builtin vs auto");
  compare_grads(e, dflt, "cpu-builtin vs auto");
  te_engine_destroy(e);
  te_engine_destroy(dflt);
  te_engine_options o{2, 8, 0, nullptr};
  te_backend_desc desc;
  tt::check(te_backend_count() >= 2 && te_backend_info(te_backend_count() - 1, &desc) == TE_OK &&
                std::string(desc.name) == "cpu-builtin" && desc.available == 1,
            "the registry ends with cpu-builtin, available");
  for (const char *bad : {"nope", "CPU", "cuda:0"}) {
    o.backend = bad;
    te_engine *x = nullptr;
    tt::check(te_engine_create("/nonexistent", &o, &x) == TE_EUNSUPPORTED && x == nullptr &&
                  std::strstr(te_last_error(), "unknown backend") && std::strstr(te_last_error(), "cpu-builtin"),
              std::string("unknown backend '") + bad + "' is refused before loading: " + te_last_error());
  }
}

}  // namespace

int main(int argc, char **argv) {
  g_model = tt::fixtures(argc, argv) + "/qwen3/model";
  test_fused_vs_separate();
  test_bad_input();
  test_state();
  test_init();
  test_loading();
  test_backends();
  return tt::finish("test_engine");
}
