// optim.cc — te_optim_step: global-norm clipping, AdamW (torch.optim.AdamW semantics, decoupled
// weight decay, bias correction by the adapter's own step), then zeroed gradients: the step's scalars
// here, the loops over the flat params / grads / m / v buffers (one layout) in the backend.
#include <algorithm>
#include <cmath>

#include "engine_impl.h"

using namespace tuft;

extern "C" te_status te_optim_step(te_engine *e, const char *id, const te_adam_params *p, double *out_grad_norm,
                                   int64_t *out_step) {
  if (!e || !p) return TE_FAIL(TE_EINVAL, "te_optim_step: engine and params are required");
  TE_API_BEGIN(e)
  Adapter *a = find_adapter(e, id);
  if (!a) return TE_FAIL(TE_ENOTFOUND, "unknown adapter '%s'", id ? id : "(null)");
  if (!a->trainable) return TE_FAIL(TE_EINVAL, "adapter '%s' is inference-only", id);
  const float vals[] = {p->learning_rate, p->beta1, p->beta2, p->eps, p->weight_decay, p->grad_clip_norm};
  for (float v : vals)
    if (!std::isfinite(v)) return TE_FAIL(TE_EINVAL, "adam params must be finite");
  if (p->learning_rate < 0 || p->beta1 < 0 || p->beta1 >= 1 || p->beta2 < 0 || p->beta2 >= 1 || p->eps < 0 ||
      p->weight_decay < 0 || p->grad_clip_norm < 0)
    return TE_FAIL(TE_EINVAL, "adam params out of range (lr, eps, wd, clip >= 0; betas in [0, 1))");

  Backend &be = *e->backend;
  const size_t n = a->n_params;
  double sq = 0;
  TE_TRY(be.op->grad_sq_norm(be, &sq, a->grads.data(), n));
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm)) return TE_FAIL(TE_EINVAL, "adapter '%s': gradient norm is not finite", id);
  // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  AdamwStep s;
  s.clip = 1.f;
  if (p->grad_clip_norm > 0) s.clip = float(std::min(1.0, p->grad_clip_norm / (norm + 1e-6)));
  const int64_t step = a->step + 1;
  const double bc1 = 1.0 - std::pow(double(p->beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(p->beta2), double(step));
  s.decay = 1.f - p->learning_rate * p->weight_decay;
  s.beta1 = p->beta1, s.beta2 = p->beta2, s.eps = p->eps;
  s.step_size = float(p->learning_rate / bc1), s.bc2_sqrt = float(std::sqrt(bc2));
  TE_TRY(be.op->adamw(be, a->params.data(), a->m.data(), a->v.data(), a->grads.data(), s, n));
  a->step = step;
  if (out_grad_norm) *out_grad_norm = norm;
  if (out_step) *out_step = step;
  return TE_OK;
  TE_API_END
}
