// loss.h — the Tinker losses (spec §6), per token: the loss contribution of one target log-probability
// ℓ and d loss / d ℓ. Every built-in loss is a plain sum over positions, so a datum's loss and its
// gradient are sums of these per-token terms.
#pragma once

#include "../../include/engine.h"

namespace tuft {

struct LossToken {
  double loss;   // contribution to the datum's summed loss
  double dlogp;  // d loss / d ℓ
};

// i: position; kk: target column (cross_entropy top-K); logp = ℓ. Reads the item's inputs at i.
LossToken loss_token(const te_train_item &it, int i, int kk, double logp);

// Validates one item's loss inputs (presence, finiteness, shapes implied by K); TE_EINVAL otherwise.
te_status loss_validate(const te_train_item &it);

}  // namespace tuft
