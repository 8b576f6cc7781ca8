// embedding.cc — row gather from the embedding table.
#include <cstring>

#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

te_status cpu::embedding_forward(Backend &, float *x, const int32_t *tokens, const float *wte, int N, int C) {
  parallel_for(size_t(N), 16, [&](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; n++) std::memcpy(x + n * C, wte + size_t(tokens[n]) * C, sizeof(float) * C);
  });
  return TE_OK;
}

}  // namespace tuft
