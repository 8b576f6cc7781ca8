// rope.h — rotary position embedding in Hugging Face's rotate_half layout: within each head, element
// i and i + HD/2 (i < HD/2) rotate by angle pos · inv_freq[i].
#pragma once
#include <cstdint>

#include "../common/buffer.h"

namespace tuft {

struct Config;

// cos/sin tables [P, HD/2] for positions 0..P-1 (default or llama3-scaled frequencies).
struct RopeTable {
  int P = 0, half = 0;
  Buffer cos, sin;
};
te_status rope_table_init(RopeTable *t, const Config &c, int P);

// x[n, h*HD ..] rotated in place by position pos[n], for H heads, rows ld floats apart.
void rope_forward(float *x, int ld, const int32_t *pos, const RopeTable &t, int N, int H, int HD);
// The adjoint (rotation by −angle), in place on the gradient.
void rope_backward(float *dx, int ld, const int32_t *pos, const RopeTable &t, int N, int H, int HD);

}  // namespace tuft
