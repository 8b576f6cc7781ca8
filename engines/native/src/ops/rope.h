// rope.h — rotary position embedding in Hugging Face's rotate_half layout: within each head, element
// i and i + HD/2 (i < HD/2) rotate by angle pos · inv_freq[i], read from cos/sin tables [P, HD/2]
// (model/rope_table.h builds them).
#pragma once
#include <cstdint>

#include "../common/status.h"

namespace tuft {

struct Backend;

// x[n, h*HD ..] rotated in place by position pos[n] (host memory, each < P), for H heads, rows ld apart.
using RopeForward = te_status(Backend &be, float *x, int ld, const int32_t *pos, const float *cos, const float *sin,
                              int N, int H, int HD);
// The adjoint (rotation by −angle), in place on the gradient.
using RopeBackward = te_status(Backend &be, float *dx, int ld, const int32_t *pos, const float *cos,
                               const float *sin, int N, int H, int HD);

}  // namespace tuft
