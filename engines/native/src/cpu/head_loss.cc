// head_loss.cc — one block of LM-head rows, row-parallel: log-softmax (common/logsoftmax.h), each
// target's log-probability and loss term, and the backward over the logits in place while the row is
// still in cache.
#include <vector>

#include "../common/logsoftmax.h"
#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

te_status cpu::head_loss(Backend &, float *logp, double *loss, float *logits, const LossTerm *terms, int n, int V,
                         int K, bool grad) {
  parallel_for(size_t(n), 1, [&](size_t r0, size_t r1) {
    std::vector<float> g(static_cast<size_t>(K));  // d loss / d logp of the row's targets
    for (size_t r = r0; r < r1; r++) {
      float *z = logits + r * V;
      const LossTerm *t = terms + r * K;
      const double l = row_lse(z, V);
      float gs = 0;
      for (int k = 0; k < K; k++) {
        const float lp = float(double(z[t[k].target]) - l);
        const LossToken lt = loss_token(t[k], lp);
        logp[r * K + k] = lp;
        loss[r * K + k] = lt.loss;
        g[size_t(k)] = float(lt.dlogp);
        gs += g[size_t(k)];
      }
      if (!grad) continue;
      row_softmax_backward(z, V, float(l), gs);
      for (int k = 0; k < K; k++) z[t[k].target] += g[size_t(k)];
    }
  });
  return TE_OK;
}

}  // namespace tuft
