// embedding.h — token embedding lookup (the table is frozen: no backward).
#pragma once
#include <cstdint>

#include "../common/status.h"

namespace tuft {

struct Backend;

// x[N, C] = wte[tokens[n], :]   (tokens: host memory, each < V)
using EmbeddingForward = te_status(Backend &be, float *x, const int32_t *tokens, const float *wte, int N, int C);

}  // namespace tuft
