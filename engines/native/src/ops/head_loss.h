// head_loss.h — the loss side of one block of LM-head rows: log-softmax over the vocabulary, each
// target's log-probability, its Tinker loss term (loss/loss.h) and, when training, d loss / d logits
// written over the logits. The orchestrator runs the head in blocks of rows, so B×T×V logits never
// exist at once; this op is where a backend may fuse the block's whole loss computation.
#pragma once
#include "../common/status.h"
#include "../loss/loss.h"

namespace tuft {

struct Backend;

// logp[n*K + k] = logits[n, terms[n*K + k].target] − log Σ_v exp(logits[n, v]);
// loss[n*K + k] = that target's loss term; with grad:
// logits[n, :] ← Σ_k dloss_k · (onehot(target_k) − softmax(logits[n, :]))   (in place).
// terms: host memory [n, K] (pads: cross-entropy of weight 0).
using HeadLoss = te_status(Backend &be, float *logp, double *loss, float *logits, const LossTerm *terms, int n,
                           int V, int K, bool grad);

}  // namespace tuft
