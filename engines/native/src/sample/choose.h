// choose.h — picking the next token from one row of logits: greedy, or temperature with top-k and
// top-p (nucleus) filtering, drawn from the sequence's own seeded generator; and the top-K list of a
// row for prompt logprobs.
#pragma once
#include <cstdint>
#include <vector>

namespace tuft {

// xoshiro256** seeded through splitmix64: one independent stream per (request seed, sample index).
class Rng {
 public:
  Rng() = default;
  Rng(uint64_t seed, uint64_t stream);
  uint64_t next();
  double uniform();  // [0, 1)

 private:
  uint64_t s_[4] = {1, 2, 3, 4};
};

struct ChooseParams {
  float temperature;  // 0 = greedy
  int top_k;          // <= 0 disables
  float top_p;        // 1 disables
};

// Token id drawn from logits[V]. scratch is reused between calls.
int32_t choose_token(const float *logits, int V, const ChooseParams &p, Rng &rng, std::vector<float> &prob,
                     std::vector<int32_t> &idx);

// The K largest logits of a row, best first (ties: lower id first).
void top_k_ids(int32_t *ids, const float *logits, int V, int K, std::vector<int32_t> &idx);

}  // namespace tuft
