// embedding.h — token embedding lookup (the table is frozen: no backward).
#pragma once
#include <cstdint>

namespace tuft {

// x[N, C] = wte[tokens[n], :]
void embedding_forward(float *x, const int32_t *tokens, const float *wte, int N, int C);

}  // namespace tuft
