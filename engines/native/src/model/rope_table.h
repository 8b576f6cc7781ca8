// rope_table.h — the cos/sin tables of the rotary embedding (ops/rope.h), [P, HD/2] each for positions
// 0..P-1: model state, computed once at load like the weights.
#pragma once

#include "../common/buffer.h"
#include "config.h"

namespace tuft {

struct RopeTable {
  int P = 0, half = 0;
  Buffer cos, sin;  // [P, HD/2]
};
te_status rope_table_init(RopeTable *t, const Config &c, int P);

}  // namespace tuft
