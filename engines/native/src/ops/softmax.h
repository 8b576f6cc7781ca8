// softmax.h — log-softmax over the vocabulary for a block of rows: gather of target log-probabilities
// and the backward that turns d loss / d logprob into d loss / d logits, in place over the logits.
#pragma once
#include <cstdint>

namespace tuft {

// lse[n] = log Σ_v exp(logits[n, v]);  logp[n*K + k] = logits[n, targets[n*K + k]] − lse[n]
void logsoftmax_gather(float *logp, float *lse, const float *logits, const int32_t *targets, int n, int V, int K);
// logits[n, :] ← Σ_k g[n*K+k] · (onehot(targets[n*K+k]) − softmax(logits[n, :]))   (in place)
void logsoftmax_gather_backward(float *logits, const float *lse, const int32_t *targets, const float *g, int n,
                                int V, int K);

}  // namespace tuft
