// sampler.cc — one continuous-batching step: admit queued requests whose KV blocks fit, run ONE
// batched pass (prompts of new requests + one token of every running sequence, grouped by adapter)
// through the model's forward pieces with the backend's attention over the paged cache, then the LM
// head only on the rows that need logits: choose tokens, record log-probabilities, apply stop rules
// (host code, on the logits read from the backend).
#include "sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "../common/logsoftmax.h"
#include "../common/pool.h"
#include "../model/engine_impl.h"

namespace tuft {

namespace {

// KV cache budget: 2 GiB, and never more than 64 full-length sequences (small models stay small).
constexpr size_t KV_BUDGET_BYTES = size_t(2) << 30;
constexpr size_t KV_MAX_FULL_SEQS = 64;
// Prompt tokens admitted per step; one longer prompt is still admitted alone.
constexpr int STEP_PREFILL_TOKENS = 4096;
// Logit rows per LM-head product. The LM head is the largest weight and each product streams all of
// it, so the rows of a step that need logits are gathered into as few products as this allows. At most
// the CPU's small-M rows (cpu/gemm.h SMALL_M): that kernel sums every row in one order whatever the
// count, so a row's logits, and a seeded draw from them, do not depend on what else is in the step.
constexpr int HEAD_ROWS = 32;

// Rows [row0, row0 + n) of the step: a prompt (prefill of sample 0) or one token of a sequence.
struct Entry {
  Request *req;
  int seq;  // sample index (0 for a prefill)
  int row0, n;
  bool prefill;
};

// Phase timers of one step, printed to stderr when TUFT_SAMPLER_PROFILE=1 (the profile recipe in
// bench/README.md reads them): where a step's time goes without a profiler.
class StepTimer {
 public:
  StepTimer() : on_(enabled()), last_(now()) {}
  void lap(int phase) {
    if (!on_) return;
    const double t = now();
    ms_[phase] += t - last_;
    last_ = t;
  }
  void print(int rows, int prefill_rows, int logit_rows) const {
    if (!on_) return;
    std::fprintf(stderr,
                 "tuft sampler step: %d rows (%d prefill), %d logit rows: rows %.2f ms, forward %.2f ms, "
                 "head %.2f ms, choose %.2f ms, finish %.2f ms\n",
                 rows, prefill_rows, logit_rows, ms_[0], ms_[1], ms_[2], ms_[3], ms_[4]);
  }
  enum { ROWS, FORWARD, HEAD, CHOOSE, FINISH };

 private:
  static bool enabled() {
    static const bool on = [] {
      const char *v = std::getenv("TUFT_SAMPLER_PROFILE");
      return v != nullptr && v[0] == '1';
    }();
    return on;
  }
  static double now() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  bool on_;
  double last_;
  double ms_[5] = {0, 0, 0, 0, 0};
};

void finish_views(Request &r) {
  for (const Sequence &s : r.seqs) {
    r.tok_ptrs.push_back(s.tokens.data());
    r.lp_ptrs.push_back(s.logprobs.data());
    r.lens.push_back(int32_t(s.tokens.size()));
    r.reasons.push_back(s.stop_reason);
  }
}

// Appends a sampled token and applies the stop rules (the stopping token is kept).
void record(Sequence &s, const SampleParams &p, const std::vector<std::string> &token_bytes, int32_t t, float lp) {
  s.tokens.push_back(t);
  s.logprobs.push_back(lp);
  s.next = t;
  if (std::find(p.stop_tokens.begin(), p.stop_tokens.end(), t) != p.stop_tokens.end()) {
    s.done = true, s.stop_reason = 0;
    return;
  }
  if (!p.stop_strings.empty()) {
    const size_t old = s.bytes.size();
    s.bytes += token_bytes[size_t(t)];
    for (const std::string &stop : p.stop_strings) {
      // Only matches that end inside the new token's bytes are new.
      size_t from = old + 1 > stop.size() ? old + 1 - stop.size() : 0;
      if (s.bytes.find(stop, from) != std::string::npos) {
        s.done = true, s.stop_reason = 0;
        return;
      }
    }
  }
  if (int(s.tokens.size()) >= p.max_tokens) s.done = true, s.stop_reason = 1;
}

// Logits of row i of a prompt entry: prompt log-probs for position i + 1, and at the last prompt
// position the first token of every sample.
void on_prompt_row(Request &r, int i, const float *z, int V, const std::vector<std::string> &token_bytes,
                   std::vector<float> &prob, std::vector<int32_t> &idx) {
  const int P = int(r.prompt.size());
  const SampleParams &p = r.params;
  if (i < P - 1) {
    int32_t target = r.prompt[size_t(i) + 1];
    float lp;
    row_logprobs(&lp, z, V, &target, 1);
    if (p.prompt_logprobs) r.prompt_lp[size_t(i) + 1] = lp;
    if (p.topk_prompt > 0) {
      const int K = p.topk_prompt;
      int32_t *ids = r.topk_ids.data() + size_t(i + 1) * K;
      top_k_ids(ids, z, V, K, idx);
      row_logprobs(r.topk_lp.data() + size_t(i + 1) * K, z, V, ids, K);
    }
    return;
  }
  const int S = p.num_samples;
  for (Sequence &s : r.seqs) s.len = P;
  if (p.max_tokens == 0) {
    for (Sequence &s : r.seqs) s.done = true, s.stop_reason = 1;
    return;
  }
  std::vector<int32_t> chosen(static_cast<size_t>(S));
  std::vector<float> lps(static_cast<size_t>(S));
  const ChooseParams cp{p.temperature, p.top_k, p.top_p};
  for (int j = 0; j < S; j++) chosen[size_t(j)] = choose_token(z, V, cp, r.seqs[size_t(j)].rng, prob, idx);
  row_logprobs(lps.data(), z, V, chosen.data(), S);
  for (int j = 0; j < S; j++) record(r.seqs[size_t(j)], p, token_bytes, chosen[size_t(j)], lps[size_t(j)]);
}

void on_decode_row(Request &r, Sequence &s, const float *z, int V, const std::vector<std::string> &token_bytes,
                   std::vector<float> &prob, std::vector<int32_t> &idx) {
  const SampleParams &p = r.params;
  s.len++;  // the token fed this step is now cached
  const ChooseParams cp{p.temperature, p.top_k, p.top_p};
  int32_t t = choose_token(z, V, cp, s.rng, prob, idx);
  float lp;
  row_logprobs(&lp, z, V, &t, 1);
  record(s, p, token_bytes, t, lp);
}

}  // namespace

Sampler &sampler_of(te_engine *e) {
  if (!e->sampler) e->sampler = std::make_shared<Sampler>();
  return *static_cast<Sampler *>(e->sampler.get());
}

te_status sampler_step(te_engine *e, Sampler &s, int *out_active) {
  const Model &m = e->model;
  const Config &c = m.cfg;
  const int V = c.V, C = c.C, Q = c.Q(), KV = c.KV(), QKV = c.QKV();
  Backend &be = *e->backend;
  const KvView kv = s.kv.view();
  StepTimer timer;
  int prefill_rows = 0, logit_rows = 0;

  // 1. Admission, first come first served: a request starts once all its blocks are free.
  int prefill_tokens = 0;
  bool admitted = false;
  while (!s.queued.empty()) {
    Request &r = *s.queued.front();
    const int per_seq = r.blocks_needed(KV_BLOCK) / r.params.num_samples;
    if (r.blocks_needed(KV_BLOCK) > s.kv.free_blocks()) break;
    if (admitted && prefill_tokens + int(r.prompt.size()) > STEP_PREFILL_TOKENS) break;
    for (Sequence &sq : r.seqs) sq.blocks = s.kv.take(per_seq);
    prefill_tokens += int(r.prompt.size());
    admitted = true;
    s.running.push_back(std::move(s.queued.front()));
    s.queued.pop_front();
  }

  // 2. Rows: prompts of new requests, one token per running sequence; grouped by adapter.
  std::vector<Entry> entries;
  for (auto &rp : s.running) {
    Request &r = *rp;
    if (!r.prefilled) {
      entries.push_back({&r, 0, 0, int(r.prompt.size()), true});
      continue;
    }
    for (int j = 0; j < int(r.seqs.size()); j++)
      if (!r.seqs[size_t(j)].done) entries.push_back({&r, j, 0, 1, false});
  }
  std::unordered_map<const Adapter *, int> first;
  for (const Entry &en : entries) first.emplace(en.req->adapter.get(), int(first.size()));
  std::stable_sort(entries.begin(), entries.end(), [&](const Entry &a, const Entry &b) {
    return first[a.req->adapter.get()] < first[b.req->adapter.get()];
  });
  Rows rows;
  std::vector<CacheRow> crow;
  std::vector<Sequence *> row_seq;
  std::vector<int> row_entry;
  for (int ei = 0; ei < int(entries.size()); ei++) {
    Entry &en = entries[size_t(ei)];
    Request &r = *en.req;
    Sequence &sq = r.seqs[size_t(en.seq)];
    en.row0 = rows.N;
    rows.spans.push_back({en.row0, en.n});
    for (int i = 0; i < en.n; i++) {
      const int pos = en.prefill ? i : sq.len;
      rows.tokens.push_back(en.prefill ? r.prompt[size_t(i)] : sq.next);
      rows.pos.push_back(pos);
      crow.push_back({sq.blocks.data(), pos});
      row_seq.push_back(&sq);
      row_entry.push_back(ei);
    }
    rows.N += en.n;
    const Adapter *ad = r.adapter.get();
    if (!rows.groups.empty() && rows.groups.back().ad == ad) rows.groups.back().n += en.n;
    else rows.groups.push_back({en.row0, en.n, ad, false});
    if (ad) rows.RM = std::max(rows.RM, ad->R);
  }

  const int N = rows.N, RM = rows.RM;
  for (const Entry &en : entries) prefill_rows += en.prefill ? en.n : 0;
  timer.lap(StepTimer::ROWS);
  if (N > 0) {
    // Rows that need logits: the last of each entry, and every prompt row asked for prompt logprobs.
    std::vector<int> need;
    for (const Entry &en : entries) {
      const SampleParams &p = en.req->params;
      const bool all_rows = en.prefill && (p.prompt_logprobs || p.topk_prompt > 0);
      for (int i = all_rows ? 0 : en.n - 1; i < en.n; i++) need.push_back(en.row0 + i);
    }

    // 3. Workspace: one layer's activations (reused by every layer), the other residual buffer,
    //    the final norm, and a block of gathered rows with their logits.
    const int CH = std::max(1, std::min({int(need.size()), HEAD_ROWS, int(std::max<size_t>(16, (size_t(1) << 24) / size_t(V)))}));
    const size_t n_layer = layer_acts_floats(c, N, RM);
    const size_t n_total = n_layer + 2 * align16(size_t(N) * C) + align16(size_t(N)) + align16(size_t(CH) * V) +
                           align16(size_t(CH) * RM) + align16(size_t(CH) * C);
    TE_TRY(s.work.reserve(be, n_total, "sampling activations"));
    float *w = s.work.data();
    LayerActs a;
    layer_acts_carve(&a, w, c, N, RM);
    float *xb = w + n_layer;                     // [N, C]
    float *xf = xb + align16(size_t(N) * C);     // [N, C]
    float *rstdf = xf + align16(size_t(N) * C);  // [N]
    float *logits = rstdf + align16(size_t(N));  // [CH, V]
    float *uh = logits + align16(size_t(CH) * V);  // [CH, RM]
    float *xg = uh + align16(size_t(CH) * RM);       // [CH, C] gathered rows of xf

    // 4. Forward: each layer's new keys/values go into the cache, then attention reads the cache.
    float *xa = a.x;
    TE_TRY(be.op->embedding_forward(be, xa, rows.tokens.data(), m.wte, N, C));
    for (int l = 0; l < c.L; l++) {
      a.x = xa;
      TE_TRY(layer_forward_qkv(be, m, l, a, rows));
      TE_TRY(be.op->kv_write(be, kv, a.k, KV, a.qkv + Q + KV, QKV, crow.data(), N, l));
      TE_TRY(be.op->kv_attention(be, a.att, Q, a.q, Q, kv, crow.data(), N, l, c.NH, c.NKV, c.HD));
      TE_TRY(layer_forward_out(be, m, l, a, rows, xb));
      std::swap(xa, xb);
    }
    TE_TRY(final_norm_forward(be, m, xf, rstdf, xa, N));

    // Samples 2.. of a new request share its prompt: copy the prompt's cache rows.
    for (const Entry &en : entries) {
      if (!en.prefill) continue;
      Request &r = *en.req;
      for (size_t j = 1; j < r.seqs.size(); j++)
        TE_TRY(be.op->kv_copy(be, kv, r.seqs[j].blocks.data(), r.seqs[0].blocks.data(), en.n));
    }

    timer.lap(StepTimer::FORWARD);

    // 5. LM head on the rows that need logits, gathered CH at a time (runs of rows in one copy each),
    //    with their adapters' groups renumbered to the gathered order.
    for (size_t k0 = 0; k0 < need.size(); k0 += size_t(CH)) {
      const int n = int(std::min(need.size() - k0, size_t(CH)));
      Rows head;
      head.N = n;
      head.RM = RM;
      for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && need[k0 + size_t(j)] == need[k0 + size_t(j) - 1] + 1) j++;
        TE_TRY(be.op->copy_rows(be, xg + size_t(i) * C, C, xf + size_t(need[k0 + size_t(i)]) * C, C, j - i, C));
        i = j;
      }
      for (int i = 0; i < n; i++) {
        const Adapter *ad = entries[size_t(row_entry[size_t(need[k0 + size_t(i)])])].req->adapter.get();
        if (!head.groups.empty() && head.groups.back().ad == ad) head.groups.back().n++;
        else head.groups.push_back({i, 1, ad, false});
      }
      TE_TRY(head_logits(be, m, logits, uh, xg, head, 0, n));
      const float *host_logits = nullptr;
      TE_TRY(host_read(be, logits, size_t(n) * V, s.logits_staging, &host_logits));
      timer.lap(StepTimer::HEAD);
      parallel_for(size_t(n), 1, [&](size_t i0, size_t i1) {
        std::vector<float> prob;
        std::vector<int32_t> idx;
        for (size_t i = i0; i < i1; i++) {
          const int row = need[k0 + i];
          const Entry &en = entries[size_t(row_entry[size_t(row)])];
          const float *z = host_logits + i * V;
          if (en.prefill) on_prompt_row(*en.req, row - en.row0, z, V, s.token_bytes, prob, idx);
          else on_decode_row(*en.req, *row_seq[size_t(row)], z, V, s.token_bytes, prob, idx);
        }
      });
      timer.lap(StepTimer::CHOOSE);
    }
    logit_rows = int(need.size());
  }

  // 6. Requests whose samples are all done leave the batch and free their blocks.
  int active = 0;
  for (auto &rp : s.running) {
    rp->prefilled = true;
    bool done = true;
    for (Sequence &sq : rp->seqs) {
      done = done && sq.done;
      active += !sq.done;
    }
    if (!done) continue;
    for (Sequence &sq : rp->seqs) s.kv.give_back(sq.blocks);
    finish_views(*rp);
    s.finished_order.push_back(rp->handle);
    const uint64_t h = rp->handle;
    s.finished[h] = std::move(rp);
  }
  s.running.erase(std::remove(s.running.begin(), s.running.end(), nullptr), s.running.end());
  for (auto &rp : s.queued) active += rp->params.num_samples;
  *out_active = active;
  timer.lap(StepTimer::FINISH);
  timer.print(N, prefill_rows, logit_rows);
  return TE_OK;
}

// Pool sized from the model when first needed.
static te_status ensure_kv(te_engine *e, Sampler &s) {
  if (s.kv.ready()) return TE_OK;
  const Config &c = e->model.cfg;
  const size_t per_token = size_t(c.L) * 2 * size_t(c.KV()) * sizeof(float);
  const size_t budget = s.kv_budget > 0 ? s.kv_budget
                                        : std::min(KV_BUDGET_BYTES, KV_MAX_FULL_SEQS * size_t(e->model.max_seq) * per_token);
  return s.kv.init(*e->backend, c, budget);
}

}  // namespace tuft

using namespace tuft;

namespace {

te_status validate_request(te_engine *e, const te_sample_request *r) {
  const Config &c = e->model.cfg;
  if (!r->prompt || r->prompt_len < 1) return TE_FAIL(TE_EINVAL, "the prompt is empty");
  for (int i = 0; i < r->prompt_len; i++)
    if (r->prompt[i] < 0 || r->prompt[i] >= c.V)
      return TE_FAIL(TE_EINVAL, "prompt[%d] = %d outside the vocabulary [0, %d)", i, r->prompt[i], c.V);
  if (r->num_samples < 1 || r->num_samples > 1024)
    return TE_FAIL(TE_EINVAL, "num_samples %d outside [1, 1024]", r->num_samples);
  if (r->max_tokens < 0) return TE_FAIL(TE_EINVAL, "max_tokens must not be negative");
  if (int64_t(r->prompt_len) + r->max_tokens > e->model.max_seq)
    return TE_FAIL(TE_EINVAL, "prompt (%d tokens) + max_tokens (%d) exceed the maximum sequence length %d",
                   r->prompt_len, r->max_tokens, e->model.max_seq);
  if (!std::isfinite(r->temperature) || r->temperature < 0)
    return TE_FAIL(TE_EINVAL, "temperature must be a finite number >= 0");
  if (!(r->top_p > 0 && r->top_p <= 1)) return TE_FAIL(TE_EINVAL, "top_p must lie in (0, 1]");
  if (r->n_stop_tokens < 0 || (r->n_stop_tokens > 0 && !r->stop_tokens))
    return TE_FAIL(TE_EINVAL, "bad stop token list");
  for (int i = 0; i < r->n_stop_tokens; i++)
    if (r->stop_tokens[i] < 0 || r->stop_tokens[i] >= c.V)
      return TE_FAIL(TE_EINVAL, "stop token %d outside the vocabulary [0, %d)", r->stop_tokens[i], c.V);
  if (r->n_stop_strings < 0 || (r->n_stop_strings > 0 && (!r->stop_strings || !r->stop_string_lens)))
    return TE_FAIL(TE_EINVAL, "bad stop string list");
  for (int i = 0; i < r->n_stop_strings; i++)
    if (r->stop_string_lens[i] < 1 || !r->stop_strings[i]) return TE_FAIL(TE_EINVAL, "stop string %d is empty", i);
  if (r->n_stop_strings > 0 && sampler_of(e).token_bytes.empty())
    return TE_FAIL(TE_EINVAL, "stop strings need the token byte strings (te_set_token_bytes)");
  if (r->topk_prompt_logprobs < 0 || r->topk_prompt_logprobs > c.V)
    return TE_FAIL(TE_EINVAL, "topk_prompt_logprobs %d outside [0, %d]", r->topk_prompt_logprobs, c.V);
  return TE_OK;
}

}  // namespace

extern "C" {

te_status te_set_token_bytes(te_engine *e, const char *const *bytes, const int32_t *lens, int n_vocab) {
  if (!e || !bytes || !lens) return TE_FAIL(TE_EINVAL, "te_set_token_bytes: engine, bytes and lens are required");
  if (n_vocab != e->model.cfg.V)
    return TE_FAIL(TE_EINVAL, "te_set_token_bytes: %d byte strings for a vocabulary of %d", n_vocab, e->model.cfg.V);
  TE_API_BEGIN(e)
  std::vector<std::string> tb(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; i++) {
    if (lens[i] < 0 || (lens[i] > 0 && !bytes[i])) return TE_FAIL(TE_EINVAL, "te_set_token_bytes: bad token %d", i);
    tb[size_t(i)].assign(bytes[i] ? bytes[i] : "", size_t(lens[i]));
  }
  sampler_of(e).token_bytes = std::move(tb);
  return TE_OK;
  TE_API_END
}

te_status te_sample_configure(te_engine *e, size_t kv_cache_bytes) {
  if (!e) return TE_FAIL(TE_EINVAL, "te_sample_configure: engine is required");
  Sampler &s = sampler_of(e);
  if (s.kv.ready()) return TE_FAIL(TE_EINVAL, "te_sample_configure: the KV cache is already allocated");
  s.kv_budget = kv_cache_bytes;
  return TE_OK;
}

te_status te_sample_submit(te_engine *e, const te_sample_request *r, uint64_t *out_handle) {
  if (!e || !r || !out_handle) return TE_FAIL(TE_EINVAL, "te_sample_submit: engine, request and out are required");
  TE_API_BEGIN(e)
  TE_TRY(validate_request(e, r));
  Sampler &s = sampler_of(e);
  auto req = std::make_unique<Request>();
  if (r->adapter_id) {
    auto it = e->adapters.find(r->adapter_id);
    if (it == e->adapters.end()) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", r->adapter_id);
    req->adapter = it->second;
  }
  TE_TRY(ensure_kv(e, s));
  req->prompt.assign(r->prompt, r->prompt + r->prompt_len);
  SampleParams &p = req->params;
  p.num_samples = r->num_samples;
  p.max_tokens = r->max_tokens;
  p.temperature = r->temperature;
  p.top_k = r->top_k;
  p.top_p = r->top_p;
  p.seed = r->seed;
  p.stop_tokens.assign(r->stop_tokens, r->stop_tokens + r->n_stop_tokens);
  for (int i = 0; i < r->n_stop_strings; i++) p.stop_strings.emplace_back(r->stop_strings[i], size_t(r->stop_string_lens[i]));
  p.prompt_logprobs = r->prompt_logprobs != 0;
  p.topk_prompt = r->topk_prompt_logprobs;
  const int need = req->blocks_needed(KV_BLOCK);
  if (need > s.kv.capacity())
    return TE_FAIL(TE_EINVAL, "the request needs %d KV cache positions; the cache holds %d (the engine option kv_cache_mb sets its size)",
                   need * KV_BLOCK, s.kv.capacity() * KV_BLOCK);
  const size_t P = req->prompt.size();
  if (p.prompt_logprobs) req->prompt_lp.assign(P, 0.f), req->prompt_lp[0] = NAN;
  if (p.topk_prompt > 0) {
    req->topk_ids.assign(P * size_t(p.topk_prompt), 0);
    req->topk_lp.assign(P * size_t(p.topk_prompt), -99999.f);
  }
  req->seqs.resize(size_t(p.num_samples));
  for (int j = 0; j < p.num_samples; j++) req->seqs[size_t(j)].rng = Rng(p.seed, uint64_t(j));
  req->handle = s.next_handle++;
  *out_handle = req->handle;
  s.queued.push_back(std::move(req));
  return TE_OK;
  TE_API_END
}

te_status te_sample_step(te_engine *e, int *out_active) {
  if (!e || !out_active) return TE_FAIL(TE_EINVAL, "te_sample_step: engine and out_active are required");
  TE_API_BEGIN(e)
  return sampler_step(e, sampler_of(e), out_active);
  TE_API_END
}

te_status te_sample_next_finished(te_engine *e, uint64_t *out_handle) {
  if (!e || !out_handle) return TE_FAIL(TE_EINVAL, "te_sample_next_finished: engine and out are required");
  Sampler &s = sampler_of(e);
  while (!s.finished_order.empty()) {
    uint64_t h = s.finished_order.front();
    s.finished_order.pop_front();
    if (s.finished.count(h)) {
      *out_handle = h;
      return TE_OK;
    }
  }
  return TE_FAIL(TE_ENOTFOUND, "no finished request");
}

te_status te_sample_result_get(te_engine *e, uint64_t handle, te_sample_result *out) {
  if (!e || !out) return TE_FAIL(TE_EINVAL, "te_sample_result_get: engine and out are required");
  Sampler &s = sampler_of(e);
  auto it = s.finished.find(handle);
  if (it == s.finished.end()) return TE_FAIL(TE_ENOTFOUND, "no finished request %llu", (unsigned long long)handle);
  const Request &r = *it->second;
  std::memset(out, 0, sizeof *out);
  out->num_sequences = int(r.seqs.size());
  out->tokens = r.tok_ptrs.data();
  out->logprobs = r.lp_ptrs.data();
  out->lengths = r.lens.data();
  out->stop_reasons = r.reasons.data();
  out->prompt_len = int(r.prompt.size());
  if (r.params.prompt_logprobs) out->prompt_logprobs = r.prompt_lp.data();
  if (r.params.topk_prompt > 0) {
    out->topk_ids = r.topk_ids.data();
    out->topk_logprobs = r.topk_lp.data();
    out->topk_k = r.params.topk_prompt;
  }
  return TE_OK;
}

void te_sample_release(te_engine *e, uint64_t handle) {
  if (!e) return;
  if (sampler_of(e).finished.erase(handle) == 0) te_sample_cancel(e, handle);
}

te_status te_sample_cancel(te_engine *e, uint64_t handle) {
  if (!e) return TE_FAIL(TE_EINVAL, "te_sample_cancel: engine is required");
  Sampler &s = sampler_of(e);
  for (auto it = s.queued.begin(); it != s.queued.end(); ++it)
    if ((*it)->handle == handle) {
      s.queued.erase(it);
      return TE_OK;
    }
  for (auto it = s.running.begin(); it != s.running.end(); ++it)
    if ((*it)->handle == handle) {
      for (Sequence &sq : (*it)->seqs) s.kv.give_back(sq.blocks);
      s.running.erase(it);
      return TE_OK;
    }
  if (s.finished.erase(handle)) return TE_OK;
  return TE_FAIL(TE_ENOTFOUND, "unknown sample request %llu", (unsigned long long)handle);
}

}  // extern "C"
