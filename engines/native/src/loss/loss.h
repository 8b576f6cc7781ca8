// loss.h — the Tinker losses (spec §6), per token: the loss contribution of one target log-probability
// ℓ and d loss / d ℓ. Every built-in loss is a plain sum over positions, so a datum's loss and its
// gradient are sums of these per-token terms. A term carries everything its loss reads, so that a
// backend's head_loss (ops/head_loss.h) evaluates it without the datum.
#pragma once
#include <cstdint>

#include "../../include/engine.h"

namespace tuft {

struct LossTerm {
  int32_t target;  // vocabulary id
  te_loss loss;
  float weight;     // cross_entropy (0 for a padding term: it then contributes nothing)
  float logprob;    // q: the sampler's log-probability (RL losses)
  float advantage;  // A (RL losses)
  float clip_low, clip_high;  // ratio clip range (ppo, cispo), per-token overrides applied
  float beta;                 // dro
};

struct LossToken {
  double loss;   // contribution to the datum's summed loss
  double dlogp;  // d loss / d ℓ
};

// The term of position i, target column kk of an item (validated by loss_validate).
LossTerm loss_term(const te_train_item &it, int i, int kk);
// A term's loss and d loss / d ℓ at ℓ = logp.
LossToken loss_token(const LossTerm &term, double logp);

// Validates one item's loss inputs (presence, finiteness, shapes implied by K); TE_EINVAL otherwise.
te_status loss_validate(const te_train_item &it);

}  // namespace tuft
