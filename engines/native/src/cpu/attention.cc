// attention.cc — CPU attention: one task per (span, head[, block of query rows]); inner loops are
// dot products and axpys over HD, written so the compiler vectorises them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/pool.h"
#include "cpu.h"
#include "dot.h"

namespace tuft {

te_status cpu::attention_forward(Backend &, float *out, int ldo, float *lse, const float *q, int ldq, const float *k,
                                 int ldk, const float *v, int ldv, const Span *spans, int n_spans, int NH, int NKV,
                                 int HD) {
  constexpr int ROWS = 32;
  struct Task {
    int span, head, t0, t1;
  };
  std::vector<Task> tasks;
  for (int s = 0; s < n_spans; s++)
    for (int h = 0; h < NH; h++)
      for (int t0 = 0; t0 < spans[s].T; t0 += ROWS) tasks.push_back({s, h, t0, std::min(spans[s].T, t0 + ROWS)});
  const float scale = 1.f / std::sqrt(float(HD));
  const int group = NH / NKV;
  parallel_for(tasks.size(), 1, [&](size_t a, size_t b) {
    std::vector<float> p;
    for (size_t ti = a; ti < b; ti++) {
      const Task &tk = tasks[ti];
      const Span &sp = spans[tk.span];
      const int h = tk.head, kvh = h / group;
      p.resize(size_t(sp.T));
      for (int t = tk.t0; t < tk.t1; t++) {
        size_t n = size_t(sp.row0 + t);
        const float *qn = q + n * ldq + size_t(h) * HD;
        float mx = -INFINITY;
        for (int j = 0; j <= t; j++) {
          p[j] = scale * dot(qn, k + size_t(sp.row0 + j) * ldk + size_t(kvh) * HD, HD);
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; j++) sum += (p[j] = std::exp(p[j] - mx));
        float *o = out + n * ldo + size_t(h) * HD;
        std::memset(o, 0, sizeof(float) * HD);
        float inv = float(1.0 / sum);
        for (int j = 0; j <= t; j++) axpy(o, p[j] * inv, v + size_t(sp.row0 + j) * ldv + size_t(kvh) * HD, HD);
        lse[n * NH + h] = mx + float(std::log(sum));
      }
    }
  });
  return TE_OK;
}

te_status cpu::attention_backward(Backend &, float *dq, int lddq, float *dk, int lddk, float *dv, int lddv,
                                  float *scratch, const float *dout, int lddo, const float *out, int ldo,
                                  const float *lse, const float *q, int ldq, const float *k, int ldk, const float *v,
                                  int ldv, const Span *spans, int n_spans, int NH, int NKV, int HD, int N) {
  // dk and dv of one kv head collect contributions from every query head of its group and every
  // query row; each (span, head) task owns its own slice of per-query-head buffers (no races), and
  // the group sum is taken afterwards.
  const int Q = NH * HD, group = NH / NKV;
  float *dk_h = scratch, *dv_h = scratch + size_t(N) * Q;  // [N, NH*HD] each
  const float scale = 1.f / std::sqrt(float(HD));
  parallel_for(size_t(n_spans) * NH, 1, [&](size_t a, size_t b) {
    for (size_t task = a; task < b; task++) {
      const Span &sp = spans[task / NH];
      const int h = int(task % NH), kvh = h / group;
      for (int t = 0; t < sp.T; t++) {
        size_t n = size_t(sp.row0 + t);
        std::memset(dk_h + n * Q + size_t(h) * HD, 0, sizeof(float) * HD);
        std::memset(dv_h + n * Q + size_t(h) * HD, 0, sizeof(float) * HD);
      }
      for (int t = 0; t < sp.T; t++) {
        size_t n = size_t(sp.row0 + t);
        const float *qn = q + n * ldq + size_t(h) * HD, *don = dout + n * lddo + size_t(h) * HD;
        const float D = dot(don, out + n * ldo + size_t(h) * HD, HD);
        const float l = lse[n * NH + h];
        float *dqn = dq + n * lddq + size_t(h) * HD;
        std::memset(dqn, 0, sizeof(float) * HD);
        for (int j = 0; j <= t; j++) {
          size_t m = size_t(sp.row0 + j);
          const float *km = k + m * ldk + size_t(kvh) * HD, *vm = v + m * ldv + size_t(kvh) * HD;
          float pj = std::exp(scale * dot(qn, km, HD) - l);
          float ds = pj * (dot(don, vm, HD) - D) * scale;
          axpy(dqn, ds, km, HD);
          axpy(dk_h + m * Q + size_t(h) * HD, ds, qn, HD);
          axpy(dv_h + m * Q + size_t(h) * HD, pj, don, HD);
        }
      }
    }
  });
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++)
      for (int kvh = 0; kvh < NKV; kvh++) {
        float *dkn = dk + n * lddk + size_t(kvh) * HD, *dvn = dv + n * lddv + size_t(kvh) * HD;
        std::memset(dkn, 0, sizeof(float) * HD);
        std::memset(dvn, 0, sizeof(float) * HD);
        for (int g = 0; g < group; g++) {
          int h = kvh * group + g;
          axpy(dkn, 1.f, dk_h + n * Q + size_t(h) * HD, HD);
          axpy(dvn, 1.f, dv_h + n * Q + size_t(h) * HD, HD);
        }
      }
  });
  return TE_OK;
}

}  // namespace tuft
