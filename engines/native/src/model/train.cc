// train.cc — te_forward_backward: validate every item, lay the items out as rows (gradient items
// first, grouped by adapter), run the base model once over all rows, then the LM head in blocks of
// rows (logits → the backend's head_loss: log-softmax, target log-probs, loss terms, d logits → d hidden;
// then the block is discarded, so B×T×V logits never exist at once), then backward through the layers.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "../loss/loss.h"
#include "engine_impl.h"

namespace tuft {

namespace {

constexpr size_t MAX_ROWS = size_t(1) << 22;

te_status validate_item(te_engine *e, const te_train_item &it, Adapter **ad) {
  const Config &c = e->model.cfg;
  *ad = nullptr;
  if (it.adapter_id) {
    *ad = find_adapter(e, it.adapter_id);
    if (!*ad) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", it.adapter_id);
    if (!it.forward_only && !(*ad)->trainable)
      return TE_FAIL(TE_EINVAL, "adapter '%s' is inference-only (imported or a snapshot): forward only",
                     it.adapter_id);
  }
  if (!it.tokens || !it.targets) return TE_FAIL(TE_EINVAL, "tokens and targets are required");
  if (it.n_tokens < 1 || it.n_tokens > e->model.max_seq)
    return TE_FAIL(TE_EINVAL, "n_tokens %d outside [1, %d] (max sequence length)", it.n_tokens, e->model.max_seq);
  if (it.k < 1 || it.k > c.V) return TE_FAIL(TE_EINVAL, "k %d outside [1, %d]", it.k, c.V);
  for (int t = 0; t < it.n_tokens; t++)
    if (it.tokens[t] < 0 || it.tokens[t] >= c.V)
      return TE_FAIL(TE_EINVAL, "tokens[%d] = %d outside the vocabulary [0, %d)", t, it.tokens[t], c.V);
  for (size_t i = 0; i < size_t(it.n_tokens) * it.k; i++)
    if (it.targets[i] < 0 || it.targets[i] >= c.V)
      return TE_FAIL(TE_EINVAL, "targets[%zu] = %d outside the vocabulary [0, %d)", i, it.targets[i], c.V);
  return loss_validate(it);
}

}  // namespace

}  // namespace tuft

using namespace tuft;

extern "C" te_status te_forward_backward(te_engine *e, te_train_item *items, int n_items) {
  if (!e) return TE_FAIL(TE_EINVAL, "te_forward_backward: engine is required");
  if (n_items < 0 || (n_items > 0 && !items)) return TE_FAIL(TE_EINVAL, "te_forward_backward: bad item list");
  TE_API_BEGIN(e)
  const Model &m = e->model;
  const Config &c = m.cfg;
  Backend &be = *e->backend;

  // 1. Validate everything before touching any state.
  std::vector<Adapter *> ads(static_cast<size_t>(n_items));
  size_t total = 0;
  for (int i = 0; i < n_items; i++) {
    te_status st = validate_item(e, items[i], &ads[size_t(i)]);
    if (st != TE_OK) return wrap_error(st, "item " + std::to_string(i));
    total += size_t(items[i].n_tokens);
  }
  if (total > MAX_ROWS) return TE_FAIL(TE_EINVAL, "%zu tokens in one call (limit %zu)", total, MAX_ROWS);
  if (n_items == 0) return TE_OK;

  // 2. Row order: items that train first (so backward covers a prefix), grouped by adapter.
  auto needs_grad = [&](int i) { return ads[size_t(i)] && !items[i].forward_only; };
  std::vector<int> first_seen(static_cast<size_t>(n_items));
  for (int i = 0; i < n_items; i++) {
    first_seen[size_t(i)] = i;
    for (int j = 0; j < i; j++)
      if (ads[size_t(j)] == ads[size_t(i)]) {
        first_seen[size_t(i)] = first_seen[size_t(j)];
        break;
      }
  }
  std::vector<int> order(static_cast<size_t>(n_items));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (needs_grad(a) != needs_grad(b)) return needs_grad(a);
    return first_seen[size_t(a)] < first_seen[size_t(b)];
  });

  Rows rows;
  rows.N = int(total);
  int Ng = 0, Kmax = 1;
  std::vector<int> row_item(total);  // item index of each row
  for (int i : order) {
    const te_train_item &it = items[i];
    const Adapter *ad = ads[size_t(i)];
    int row0 = int(rows.tokens.size());
    rows.spans.push_back({row0, it.n_tokens});
    for (int t = 0; t < it.n_tokens; t++) {
      rows.tokens.push_back(it.tokens[t]);
      rows.pos.push_back(t);
      row_item[size_t(row0 + t)] = i;
    }
    bool g = needs_grad(i);
    if (g) Ng += it.n_tokens;
    if (!rows.groups.empty() && rows.groups.back().ad == ad && rows.groups.back().grads == g)
      rows.groups.back().n += it.n_tokens;
    else rows.groups.push_back({row0, it.n_tokens, ad, g});
    if (ad) rows.RM = std::max(rows.RM, ad->R);
    Kmax = std::max(Kmax, it.k);
  }

  // 3. Workspace: activations, head block, backward scratch (grown once, reused across calls).
  const int N = rows.N, RM = rows.RM, V = c.V;
  // Rows per LM-head block: about 2^25 logits (128 MiB), in blocks of equal size, so that the head's
  // weights (read in full by every block, forward and backward) are read as few times as possible and
  // no block is a thin leftover; rounded up to whole 32-row tiles of the head's forward GEMM (4 × 256
  // rows went in blocks of 205, 7 tiles each with 19 rows of padding).
  int CH = std::max(1, std::min(N, e->head_rows > 0 ? e->head_rows
                                                    : int(std::max<size_t>(16, (size_t(1) << 25) / size_t(V)))));
  if (e->head_rows <= 0) {
    const int blocks = (N + CH - 1) / CH;
    CH = std::min(N, ((N + blocks - 1) / blocks + 31) / 32 * 32);
  }
  const size_t CK = size_t(CH) * Kmax;
  size_t n_acts = acts_floats(c, N, RM);
  size_t n_head = align16(size_t(CH) * V) + 2 * align16(size_t(CH) * RM) + align16(CK) + align16(2 * CK);
  size_t n_back = Ng ? backward_floats(c, Ng, RM) + align16(size_t(Ng) * c.C) : 0;
  TE_TRY(e->work.reserve(be, n_acts + n_head + n_back, "training activations"));
  float *w = e->work.data();
  Acts acts;
  acts_carve(&acts, w, c, N, RM);
  float *logits = w + n_acts;                                     // [CH, V]
  float *uh = logits + align16(size_t(CH) * V);                   // [CH, RM]
  float *th = uh + align16(size_t(CH) * RM);                      // [CH, RM]
  float *logp = th + align16(size_t(CH) * RM);                    // [CH, Kmax]
  double *tloss = reinterpret_cast<double *>(logp + align16(CK));  // [CH, Kmax] each target's loss term
  float *dxf = Ng ? w + n_acts + n_head : nullptr;                // [Ng, C]
  float *back = Ng ? dxf + align16(size_t(Ng) * c.C) : nullptr;
  std::vector<LossTerm> terms(CK);                                // [CH, Kmax]
  const LossTerm pad{0, TE_LOSS_CROSS_ENTROPY, 0, 0, 0, 0, 0, 0};  // weight 0: contributes nothing
  std::vector<float> host_logp(CK);
  std::vector<double> host_loss(CK);

  // 4. Forward over all rows.
  TE_TRY(model_forward(be, m, acts, rows));

  // 5. LM head, loss and head backward, one block of rows at a time.
  std::vector<double> loss(size_t(n_items), 0.0);
  for (int r0 = 0; r0 < N;) {
    int r1 = std::min(N, r0 + CH);
    if (r0 < Ng && r1 > Ng) r1 = Ng;  // a block is either all-gradient or all-forward
    const int n = r1 - r0;
    const bool grad = r0 < Ng;
    for (int r = 0; r < n; r++) {
      const te_train_item &it = items[row_item[size_t(r0 + r)]];
      int t = rows.pos[size_t(r0 + r)];
      for (int k = 0; k < Kmax; k++)
        terms[size_t(r) * Kmax + k] = k < it.k ? loss_term(it, t, k) : pad;
    }
    TE_TRY(head_logits(be, m, logits, uh, acts.xf, rows, r0, n));
    TE_TRY(be.op->head_loss(be, logp, tloss, logits, terms.data(), n, V, Kmax, grad));
    TE_TRY(be.op->download(be, host_logp.data(), logp, sizeof(float) * size_t(n) * Kmax));
    TE_TRY(be.op->download(be, host_loss.data(), tloss, sizeof(double) * size_t(n) * Kmax));
    for (int r = 0; r < n; r++) {
      int i = row_item[size_t(r0 + r)];
      te_train_item &it = items[i];
      int t = rows.pos[size_t(r0 + r)];
      for (int k = 0; k < it.k; k++) {
        if (it.out_logprobs) it.out_logprobs[size_t(t) * it.k + k] = host_logp[size_t(r) * Kmax + k];
        loss[size_t(i)] += host_loss[size_t(r) * Kmax + k];
      }
    }
    if (grad) TE_TRY(head_backward(be, m, dxf, th, logits, acts.xf, uh, rows, r0, n));
    r0 = r1;
  }
  for (int i = 0; i < n_items; i++)
    if (items[i].out_loss) *items[i].out_loss = loss[size_t(i)];

  // 6. Backward through the layers for the gradient rows.
  if (Ng) TE_TRY(model_backward(be, m, acts, rows, Ng, dxf, back));
  return TE_OK;
  TE_API_END
}
