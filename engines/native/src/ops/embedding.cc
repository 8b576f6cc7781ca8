// embedding.cc — row gather from the embedding table.
#include "embedding.h"

#include <cstring>

#include "../common/pool.h"

namespace tuft {

void embedding_forward(float *x, const int32_t *tokens, const float *wte, int N, int C) {
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) std::memcpy(x + n * C, wte + size_t(tokens[n]) * C, sizeof(float) * C);
  });
}

}  // namespace tuft
