// loss.cc — cross_entropy, importance_sampling, ppo, cispo, dro.
#include "loss.h"

#include <algorithm>
#include <cmath>

#include "../common/status.h"

namespace tuft {

static double clip(double x, double lo, double hi) { return std::min(std::max(x, lo), hi); }

LossTerm loss_term(const te_train_item &it, int i, int kk) {
  LossTerm t{};
  t.target = it.targets[size_t(i) * it.k + kk];
  t.loss = it.loss;
  if (it.loss == TE_LOSS_CROSS_ENTROPY) {
    t.weight = it.weights[size_t(i) * it.k + kk];
    return t;
  }
  t.logprob = it.logprobs[i], t.advantage = it.advantages[i];
  t.clip_low = it.clip_low ? it.clip_low[i] : it.clip_low_threshold;
  t.clip_high = it.clip_high ? it.clip_high[i] : it.clip_high_threshold;
  t.beta = it.beta;
  return t;
}

LossToken loss_token(const LossTerm &t, double logp) {
  switch (t.loss) {
    case TE_LOSS_CROSS_ENTROPY: {  // L = −w ℓ
      double w = t.weight;
      return {-w * logp, -w};
    }
    case TE_LOSS_IMPORTANCE_SAMPLING: {  // L = −r A,  r = exp(ℓ − q) (not detached)
      double a = t.advantage, r = std::exp(logp - double(t.logprob));
      return {-r * a, -r * a};
    }
    case TE_LOSS_PPO: {  // L = −min(r A, clip(r, lo, hi) A)
      double a = t.advantage, r = std::exp(logp - double(t.logprob));
      double lo = t.clip_low, hi = t.clip_high;
      double unclipped = r * a, clipped = clip(r, lo, hi) * a;
      if (unclipped <= clipped) return {-unclipped, -unclipped};
      // The clipped branch is the minimum: it is flat in ℓ wherever the clip is active.
      bool inside = r > lo && r < hi;
      return {-clipped, inside ? -r * a : 0.0};
    }
    case TE_LOSS_CISPO: {  // L = −sg[clip(r, lo, hi)] ℓ A
      double a = t.advantage, r = std::exp(logp - double(t.logprob));
      double c = clip(r, t.clip_low, t.clip_high);
      return {-c * logp * a, -c * a};
    }
    case TE_LOSS_DRO: {  // L = −(ℓ A − ½ β (ℓ − q)²)
      double a = t.advantage, d = logp - double(t.logprob), b = t.beta;
      return {-(logp * a - 0.5 * b * d * d), -a + b * d};
    }
  }
  return {0, 0};
}

static te_status check_finite(const float *x, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!std::isfinite(x[i])) return TE_FAIL(TE_EINVAL, "%s[%zu] is not finite", name, i);
  return TE_OK;
}

te_status loss_validate(const te_train_item &it) {
  const size_t T = size_t(it.n_tokens), TK = T * size_t(it.k);
  switch (it.loss) {
    case TE_LOSS_CROSS_ENTROPY:
      if (!it.weights) return TE_FAIL(TE_EINVAL, "cross_entropy needs weights");
      return check_finite(it.weights, TK, "weights");
    case TE_LOSS_IMPORTANCE_SAMPLING:
    case TE_LOSS_PPO:
    case TE_LOSS_CISPO:
    case TE_LOSS_DRO: {
      if (it.k != 1) return TE_FAIL(TE_EINVAL, "loss %d takes 1-D targets, got K = %d", int(it.loss), it.k);
      if (!it.logprobs) return TE_FAIL(TE_EINVAL, "missing logprobs (sampler log-probabilities)");
      if (!it.advantages) return TE_FAIL(TE_EINVAL, "missing advantages");
      TE_TRY(check_finite(it.logprobs, T, "logprobs"));
      TE_TRY(check_finite(it.advantages, T, "advantages"));
      if (it.loss == TE_LOSS_DRO) {
        if (!std::isfinite(it.beta)) return TE_FAIL(TE_EINVAL, "beta is not finite");
        return TE_OK;
      }
      if (it.loss == TE_LOSS_IMPORTANCE_SAMPLING) return TE_OK;
      if (it.clip_low) TE_TRY(check_finite(it.clip_low, T, "clip_low_threshold"));
      if (it.clip_high) TE_TRY(check_finite(it.clip_high, T, "clip_high_threshold"));
      if (!std::isfinite(it.clip_low_threshold) || !std::isfinite(it.clip_high_threshold))
        return TE_FAIL(TE_EINVAL, "clip thresholds are not finite");
      return TE_OK;
    }
  }
  return TE_FAIL(TE_EINVAL, "unknown loss %d", int(it.loss));
}

}  // namespace tuft
