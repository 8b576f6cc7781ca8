// tensor.h — the element-wise moves the orchestrators need between ops: the residual add and a copy
// of row slices (q and k out of the fused q/k/v rows).
#pragma once
#include <cstddef>

#include "../common/status.h"

namespace tuft {

struct Backend;

// y[i] += x[i] for i < n
using Add = te_status(Backend &be, float *y, const float *x, size_t n);
// dst[n, 0:D] = src[n, 0:D] for N rows (ldd, lds floats apart)
using CopyRows = te_status(Backend &be, float *dst, int ldd, const float *src, int lds, int N, int D);

}  // namespace tuft
