// backend.cc — what every backend shares: op names for reports and host reads of backend memory.
#include "backend.h"

namespace tuft {

const char *op_name(Op op) {
  static const char *const names[] = {
      "gemm",           "linear_forward",     "linear_backward",  "lora_forward",     "lora_backward",
      "attention_forward", "attention_backward", "rmsnorm_forward", "rmsnorm_backward", "rope_forward",
      "rope_backward",  "swiglu_forward",     "swiglu_backward",  "embedding_forward", "add",
      "copy_rows",      "head_loss",          "grad_sq_norm",     "adamw",            "kv_write",
      "kv_copy",        "kv_attention"};
  static_assert(sizeof names / sizeof names[0] == size_t(Op::COUNT), "a name for every op");
  return op >= Op::GEMM && op < Op::COUNT ? names[int(op)] : "?";
}

te_status host_read(Backend &be, const float *src, size_t n, std::vector<float> &staging, const float **out) {
  if (be.host_memory) {
    *out = src;
    return TE_OK;
  }
  staging.resize(n);
  *out = staging.data();
  return be.op->download(be, staging.data(), src, n * sizeof(float));
}

}  // namespace tuft
