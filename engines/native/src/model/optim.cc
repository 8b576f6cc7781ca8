// optim.cc — te_optim_step: global-norm clipping, AdamW (torch.optim.AdamW semantics, decoupled
// weight decay, bias correction by the adapter's own step), then zeroed gradients. One loop over the
// flat params / grads / m / v buffers, which share one layout.
#include <cmath>

#include "../common/pool.h"
#include "engine_impl.h"

using namespace tuft;

namespace {

double grad_sq_norm(const float *g, size_t n) {
  int nt = std::max(1, current_threads());
  std::vector<double> part(size_t(nt) * 4 + 1, 0.0);
  size_t chunk = (n + part.size() - 1) / part.size();
  parallel_for(part.size(), 1, [&](size_t c0, size_t c1) {
    for (size_t c = c0; c < c1; c++) {
      double s = 0;
      for (size_t i = c * chunk; i < std::min(n, (c + 1) * chunk); i++) s += double(g[i]) * g[i];
      part[c] = s;
    }
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

}  // namespace

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

  const size_t n = a->n_params;
  float *w = a->params.data(), *g = a->grads.data(), *m = a->m.data(), *v = a->v.data();
  const double norm = std::sqrt(grad_sq_norm(g, n));
  if (!std::isfinite(norm)) return TE_FAIL(TE_EINVAL, "adapter '%s': gradient norm is not finite", id);
  // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1.
  float clip = 1.f;
  if (p->grad_clip_norm > 0) clip = float(std::min(1.0, p->grad_clip_norm / (norm + 1e-6)));
  const int64_t step = a->step + 1;
  const double bc1 = 1.0 - std::pow(double(p->beta1), double(step));
  const double bc2 = 1.0 - std::pow(double(p->beta2), double(step));
  const float lr = p->learning_rate, b1 = p->beta1, b2 = p->beta2, eps = p->eps;
  const float decay = 1.f - lr * p->weight_decay, step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2));
  parallel_for(n, 4096, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) {
      float gi = g[i] * clip;
      w[i] *= decay;
      m[i] = b1 * m[i] + (1.f - b1) * gi;
      v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
      w[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
      g[i] = 0.f;
    }
  });
  a->step = step;
  if (out_grad_norm) *out_grad_norm = norm;
  if (out_step) *out_step = step;
  return TE_OK;
  TE_API_END
}
