// test_reference.cc — the engine against golden values from PyTorch + transformers + PEFT (float64):
// three architectures (qwen3, qwen2, llama), base / bf16 / LoRA / top-K logprobs, every loss and its
// d loss / d logprob, LoRA gradients and their global norm, two AdamW steps, and a greedy continuation.
#include <algorithm>
#include <cstring>
#include <map>

#include "common/json.h"
#include "loss/loss.h"
#include "model/engine_impl.h"
#include "model/safetensors.h"
#include "test_util.h"

using namespace tuft;

namespace {

std::vector<int32_t> ints(const Json &a) {
  std::vector<int32_t> v;
  for (const auto &x : a.arr) {
    if (x.kind == Json::Array)
      for (const auto &y : x.arr) v.push_back(int32_t(y.num));
    else v.push_back(int32_t(x.num));
  }
  return v;
}
std::vector<float> floats(const Json &a) {
  std::vector<float> v;
  for (const auto &x : a.arr) {
    if (x.kind == Json::Array)
      for (const auto &y : x.arr) v.push_back(float(y.num));
    else v.push_back(float(x.num));
  }
  return v;
}
std::vector<double> doubles(const Json &a) {
  std::vector<double> v;
  for (const auto &x : a.arr) {
    if (x.kind == Json::Array)
      for (const auto &y : x.arr) v.push_back(y.num);
    else v.push_back(x.num);
  }
  return v;
}

struct Case {
  std::vector<int32_t> tokens, targets, topk_targets;
  std::vector<float> weights, advantages, sampling, topk_weights;
  int T() const { return int(tokens.size()); }
};

// One item per case; outputs land in lp[c] / loss[c].
struct Batch {
  std::vector<te_train_item> items;
  std::vector<std::vector<float>> lp;
  std::vector<double> loss;
};

Batch make_batch(const std::vector<Case> &cases, const char *adapter, te_loss loss, bool topk, bool forward_only) {
  Batch b;
  b.items.resize(cases.size());
  b.lp.resize(cases.size());
  b.loss.assign(cases.size(), 0.0);
  for (size_t c = 0; c < cases.size(); c++) {
    const Case &cs = cases[c];
    te_train_item &it = b.items[c];
    std::memset(&it, 0, sizeof it);
    it.adapter_id = adapter;
    it.tokens = cs.tokens.data();
    it.n_tokens = cs.T();
    it.k = topk ? 3 : 1;
    it.targets = topk ? cs.topk_targets.data() : cs.targets.data();
    it.loss = loss;
    it.weights = topk ? cs.topk_weights.data() : cs.weights.data();
    it.logprobs = cs.sampling.data();
    it.advantages = cs.advantages.data();
    it.forward_only = forward_only;
    b.lp[c].assign(size_t(cs.T()) * it.k, NAN);
    it.out_logprobs = b.lp[c].data();
    it.out_loss = &b.loss[c];
  }
  return b;
}

void check_logprobs(const Batch &b, const std::vector<std::vector<double>> &want, double tol, const std::string &what) {
  for (size_t c = 0; c < b.lp.size(); c++) {
    double worst = 0;
    for (size_t i = 0; i < b.lp[c].size(); i++) worst = std::max(worst, std::fabs(b.lp[c][i] - want[c][i]));
    tt::near(worst, 0, tol, 0, what + " case " + std::to_string(c) + " max |diff|");
  }
}

std::vector<std::vector<double>> per_case(const Json &cases, const char *key) {
  std::vector<std::vector<double>> out;
  for (const auto &c : cases.arr) out.push_back(key ? doubles(*c.get(key)) : doubles(c));
  return out;
}

void compare_adapter(const Adapter &a, const float *buf, const std::string &file, double tol, const std::string &what) {
  TensorSet ts;
  if (!tt::ok_status(ts.open_file(file), "open " + file)) return;
  double worst = 0;
  std::string worst_name;
  for (const auto &e : a.entries) {
    std::vector<float> ref(size_t(e.rows) * e.cols);
    if (!tt::ok_status(ts.read_f32(e.name, {e.rows, e.cols}, ref.data()), "read " + e.name)) return;
    double r = tt::rel_err(buf + e.offset, ref.data(), ref.size());
    if (r > worst) worst = r, worst_name = e.name;
  }
  tt::near(worst, 0, tol, 0, what + " (worst tensor " + worst_name + ")");
}

void run_arch(const std::string &root, const std::string &arch) {
  std::printf("-- %s\n", arch.c_str());
  std::string dir = root + "/" + arch;
  Json ex;
  if (!tt::ok_status(json_parse_file(dir + "/expected.json", &ex), arch + ": expected.json")) return;
  const Json &jc = *ex.get("cases");
  std::vector<Case> cases;
  for (const auto &c : jc.arr) {
    Case cs;
    cs.tokens = ints(*c.get("model_input"));
    cs.targets = ints(*c.get("target_tokens"));
    cs.weights = floats(*c.get("weights"));
    cs.advantages = floats(*c.get("advantages"));
    cs.sampling = floats(*c.get("sampling_logprobs"));
    cs.topk_targets = ints(*c.get("topk_targets"));
    cs.topk_weights = floats(*c.get("topk_weights"));
    cases.push_back(cs);
  }

  te_engine_options opts{0, 8, 0, nullptr};
  te_engine *e = nullptr;
  if (!tt::ok_status(te_engine_create((dir + "/model").c_str(), &opts, &e), arch + ": create engine")) return;
  te_model_info info;
  te_engine_info(e, &info);
  tt::check(arch == info.arch, arch + ": info.arch");

  // Base model and the bf16 copy.
  {
    Batch b = make_batch(cases, nullptr, TE_LOSS_CROSS_ENTROPY, false, true);
    tt::ok_status(te_forward_backward(e, b.items.data(), int(b.items.size())), arch + ": base forward");
    check_logprobs(b, per_case(jc, "base_logprobs"), 1e-4, arch + ": base logprobs");
    te_engine *e16 = nullptr;
    if (tt::ok_status(te_engine_create((dir + "/model-bf16").c_str(), &opts, &e16), arch + ": bf16 engine")) {
      Batch b16 = make_batch(cases, nullptr, TE_LOSS_CROSS_ENTROPY, false, true);
      tt::ok_status(te_forward_backward(e16, b16.items.data(), int(b16.items.size())), arch + ": bf16 forward");
      check_logprobs(b16, per_case(jc, "base_bf16_logprobs"), 1e-4, arch + ": bf16 logprobs");
      te_engine_destroy(e16);
    }
  }

  // The fixture PEFT adapter, imported for inference.
  tt::ok_status(te_adapter_import_peft(e, "peft", (dir + "/adapter").c_str()), arch + ": import adapter");
  auto lora_lp = per_case(jc, "lora_logprobs");
  {
    Batch b = make_batch(cases, "peft", TE_LOSS_CROSS_ENTROPY, false, true);
    tt::ok_status(te_forward_backward(e, b.items.data(), int(b.items.size())), arch + ": lora forward");
    check_logprobs(b, lora_lp, 1e-4, arch + ": lora logprobs");
    Batch k = make_batch(cases, "peft", TE_LOSS_CROSS_ENTROPY, true, true);
    tt::ok_status(te_forward_backward(e, k.items.data(), int(k.items.size())), arch + ": top-K forward");
    check_logprobs(k, per_case(jc, "lora_topk_logprobs"), 1e-4, arch + ": lora top-K logprobs");
    double total = k.loss[0] + k.loss[1] + k.loss[2];
    double want = ex.get("losses")->get("cross_entropy_topk")->get("total")->num;
    tt::near(total, want, 1e-4, 1e-6, arch + ": top-K cross-entropy total");
  }

  // Every loss: values through the engine, d loss / d logprob per token at the reference logprobs.
  const std::map<std::string, te_loss> loss_ids = {{"cross_entropy", TE_LOSS_CROSS_ENTROPY},
                                                   {"importance_sampling", TE_LOSS_IMPORTANCE_SAMPLING},
                                                   {"ppo", TE_LOSS_PPO},
                                                   {"cispo", TE_LOSS_CISPO},
                                                   {"dro", TE_LOSS_DRO}};
  for (const auto &kv : ex.get("losses")->obj) {
    const Json &L = kv.second;
    if (!L.get("per_case")) continue;  // cross_entropy_topk: total only, checked above
    te_loss id = loss_ids.at(L.get("loss_fn")->str);
    Batch b = make_batch(cases, "peft", id, false, true);
    const Json *cfg = L.get("config");
    for (auto &it : b.items) {
      it.clip_low_threshold = id == TE_LOSS_PPO ? 0.8f : 0.0f;
      it.clip_high_threshold = id == TE_LOSS_PPO ? 1.2f : 4.0f;
      it.beta = 0.01f;
      if (cfg && cfg->kind == Json::Object) {
        if (const Json *v = cfg->get("clip_low_threshold")) it.clip_low_threshold = float(v->num);
        if (const Json *v = cfg->get("clip_high_threshold")) it.clip_high_threshold = float(v->num);
        if (const Json *v = cfg->get("beta")) it.beta = float(v->num);
      }
    }
    tt::ok_status(te_forward_backward(e, b.items.data(), int(b.items.size())), arch + ": " + kv.first);
    double total = 0;
    for (size_t c = 0; c < cases.size(); c++) {
      const Json &pc = L.get("per_case")->arr[c];
      tt::near(b.loss[c], pc.get("loss")->num, 1e-4, 1e-5, arch + ": " + kv.first + " loss case " + std::to_string(c));
      total += b.loss[c];
      auto want_d = doubles(*pc.get("dloss_dlogprobs"));
      double worst = 0;
      for (int t = 0; t < cases[c].T(); t++) {
        LossToken lt = loss_token(loss_term(b.items[c], t, 0), lora_lp[c][size_t(t)]);
        worst = std::max(worst, std::fabs(lt.dlogp - want_d[size_t(t)]) / std::max(1.0, std::fabs(want_d[size_t(t)])));
      }
      tt::near(worst, 0, 1e-4, 0, arch + ": " + kv.first + " dloss/dlogprob case " + std::to_string(c));
    }
    tt::near(total, L.get("total")->num, 1e-4, 1e-5, arch + ": " + kv.first + " total");
  }

  // Gradients: a trainable adapter holding the fixture weights, cross-entropy over the three cases.
  te_lora_config lc{4, 8.f, 1, 1, 1, 1};
  tt::ok_status(te_adapter_create(e, "train", &lc), arch + ": create trainable adapter");
  tt::ok_status(te_adapter_load(e, "train", (dir + "/adapter").c_str(), 0), arch + ": load fixture weights");
  Adapter *a = find_adapter(e, "train");
  if (!a) return;
  const Json &adam = *ex.get("adam");
  te_adam_params ap{float(adam.get("learning_rate")->num), float(adam.get("beta1")->num),
                    float(adam.get("beta2")->num),         float(adam.get("eps")->num),
                    float(adam.get("weight_decay")->num),  float(adam.get("grad_clip_norm")->num)};
  for (int step = 0; step < 2; step++) {
    const Json &st = ex.get("steps")->arr[size_t(step)];
    Batch b = make_batch(cases, "train", TE_LOSS_CROSS_ENTROPY, false, false);
    tt::ok_status(te_forward_backward(e, b.items.data(), int(b.items.size())), arch + ": forward_backward");
    double loss = b.loss[0] + b.loss[1] + b.loss[2];
    std::string s = arch + ": step " + std::to_string(step + 1);
    tt::near(loss, st.get("loss_before")->num, 1e-3, 1e-6, s + " loss before");
    if (step == 0)
      compare_adapter(*a, a->grads.data(), dir + "/grads_cross_entropy.safetensors", 1e-3, s + " LoRA gradients");
    double norm = 0;
    int64_t n_step = 0;
    tt::ok_status(te_optim_step(e, "train", &ap, &norm, &n_step), s + " optim_step");
    tt::near(norm, st.get("grad_norm_before_clip")->num, 0, 1e-4, s + " grad norm before clip");
    tt::check(n_step == step + 1, s + " step counter");
  }
  compare_adapter(*a, a->params.data(), dir + "/adapter_after_2_steps.safetensors", 1e-3, arch + ": adapter after 2 steps");
  {
    Batch b = make_batch(cases, "train", TE_LOSS_CROSS_ENTROPY, false, true);
    tt::ok_status(te_forward_backward(e, b.items.data(), int(b.items.size())), arch + ": forward after 2 steps");
    check_logprobs(b, per_case(*ex.get("lora_logprobs_after_2_steps"), nullptr), 1e-4, arch + ": logprobs after 2 steps");
  }

  // Greedy continuation: full forwards with every vocabulary id as a target of every position.
  {
    const Json &g = *ex.get("greedy_after_2_steps");
    std::vector<int32_t> seq = ints(*g.get("prompt"));
    const int V = info.vocab_size;
    bool tokens_ok = true;
    double worst = 0;
    for (const auto &tl : g.get("tokens_and_logprobs")->arr) {
      int T = int(seq.size());
      std::vector<int32_t> all(size_t(T) * V);
      for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) all[size_t(t) * V + v] = v;
      std::vector<float> w(all.size(), 0.f), lp(all.size());
      te_train_item it;
      std::memset(&it, 0, sizeof it);
      it.adapter_id = "train", it.tokens = seq.data(), it.n_tokens = T, it.targets = all.data(), it.k = V;
      it.loss = TE_LOSS_CROSS_ENTROPY, it.weights = w.data(), it.forward_only = 1, it.out_logprobs = lp.data();
      if (!tt::ok_status(te_forward_backward(e, &it, 1), arch + ": greedy forward")) break;
      const float *last = lp.data() + size_t(T - 1) * V;
      int best = int(std::max_element(last, last + V) - last);
      tokens_ok = tokens_ok && best == int(tl.arr[0].num);
      worst = std::max(worst, std::fabs(last[best] - tl.arr[1].num));
      seq.push_back(int32_t(tl.arr[0].num));
    }
    tt::check(tokens_ok, arch + ": greedy tokens");
    tt::near(worst, 0, 1e-4, 0, arch + ": greedy logprobs");
  }
  te_engine_destroy(e);
}

}  // namespace

int main(int argc, char **argv) {
  std::string root = tt::fixtures(argc, argv);
  for (const char *arch : {"qwen3", "qwen2", "llama"}) run_arch(root, arch);
  return tt::finish("test_reference");
}
