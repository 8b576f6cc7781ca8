// attention.h — causal multi-head attention with grouped key/value heads, causal within each span
// (one span = one item's rows, of any length; spans never attend to each other). Query head h reads
// key/value head h / (NH / NKV). Probabilities are not stored: forward keeps the log-sum-exp per
// (row, head) and backward recomputes them (memory O(N·NH) instead of O(T²·NH)).
#pragma once
#include "../common/status.h"

namespace tuft {

struct Backend;

struct Span {
  int row0;  // first row of the item
  int T;     // its tokens
};

// out[n, h*HD..] = Σ_j softmax_j(q_n · k_j / sqrt(HD)) v_j over j ≤ n in the span; lse[n*NH + h]
using AttentionForward = te_status(Backend &be, float *out, int ldo, float *lse, const float *q, int ldq,
                                   const float *k, int ldk, const float *v, int ldv, const Span *spans, int n_spans,
                                   int NH, int NKV, int HD);
// dq[N, NH*HD], dk[N, NKV*HD], dv[N, NKV*HD] written (not accumulated). scratch: 2 · N · NH · HD floats.
using AttentionBackward = te_status(Backend &be, float *dq, int lddq, float *dk, int lddk, float *dv, int lddv,
                                    float *scratch, const float *dout, int lddo, const float *out, int ldo,
                                    const float *lse, const float *q, int ldq, const float *k, int ldk,
                                    const float *v, int ldv, const Span *spans, int n_spans, int NH, int NKV, int HD,
                                    int N);

}  // namespace tuft
