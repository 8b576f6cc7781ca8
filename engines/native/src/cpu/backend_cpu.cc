// backend_cpu.cc — the CPU backends' table: host memory, every op, and the two registry entries.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../common/pool.h"
#include "cpu.h"

namespace tuft {

namespace {

struct CpuContext {
  GemmImpl gemm;
};

void destroy(Backend *be) {
  delete static_cast<CpuContext *>(be->context);
  delete be;
}

// Every shape the model code can produce, given heads that group evenly and rotary pairs.
bool supports(const Backend &, Op op, const OpShape &s) {
  switch (op) {
    case Op::ATTENTION_FORWARD:
    case Op::ATTENTION_BACKWARD:
    case Op::KV_ATTENTION:
      return s.kv_heads == 0 || s.heads % s.kv_heads == 0;
    case Op::ROPE_FORWARD:
    case Op::ROPE_BACKWARD:
      return s.head_dim % 2 == 0;
    default:
      return true;
  }
}

te_status alloc(Backend &, size_t bytes, void **out) {
  *out = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!*out) return TE_FAIL(TE_ENOMEM, "out of memory allocating %zu bytes", bytes);
  return TE_OK;
}
void free_mem(Backend &, void *p) { std::free(p); }
// Split over the pool in 1 MiB pieces: the backward zeroes a few MiB per layer.
te_status zero(Backend &, void *dst, size_t bytes) {
  constexpr size_t PIECE = size_t(1) << 20;
  char *d = static_cast<char *>(dst);
  parallel_for((bytes + PIECE - 1) / PIECE, 1, [&](size_t p0, size_t p1) {
    std::memset(d + p0 * PIECE, 0, std::min(bytes, p1 * PIECE) - p0 * PIECE);
  });
  return TE_OK;
}
te_status copy(Backend &, void *dst, const void *src, size_t bytes) {
  std::memcpy(dst, src, bytes);
  return TE_OK;
}

BackendOps make_ops() {
  BackendOps o{};
  o.destroy = destroy, o.supports = supports;
  o.alloc = alloc, o.free = free_mem, o.zero = zero, o.upload = copy, o.download = copy;
  o.gemm = cpu::gemm;
  o.linear_forward = cpu::linear_forward, o.linear_backward = cpu::linear_backward;
  o.lora_forward = cpu::lora_forward, o.lora_backward = cpu::lora_backward;
  o.attention_forward = cpu::attention_forward, o.attention_backward = cpu::attention_backward;
  o.rmsnorm_forward = cpu::rmsnorm_forward, o.rmsnorm_backward = cpu::rmsnorm_backward;
  o.rope_forward = cpu::rope_forward, o.rope_backward = cpu::rope_backward;
  o.swiglu_forward = cpu::swiglu_forward, o.swiglu_backward = cpu::swiglu_backward;
  o.embedding_forward = cpu::embedding_forward;
  o.add = cpu::add, o.copy_rows = cpu::copy_rows;
  o.head_loss = cpu::head_loss;
  o.grad_sq_norm = cpu::grad_sq_norm, o.adamw = cpu::adamw;
  o.kv_write = cpu::kv_write, o.kv_copy = cpu::kv_copy, o.kv_attention = cpu::kv_attention;
  return o;
}
const BackendOps CPU_OPS = make_ops();

te_status create(const char *name, GemmImpl g, Backend **out) {
  if (g == GEMM_OPENBLAS) gemm_openblas_single_threaded();
  auto *be = new Backend{&CPU_OPS, name, g == GEMM_OPENBLAS ? "cpu:openblas" : "cpu:builtin", true,
                         new CpuContext{g}};
  *out = be;
  return TE_OK;
}

constexpr GemmImpl BEST_GEMM = HAVE_OPENBLAS ? GEMM_OPENBLAS : GEMM_BUILTIN;
bool always() { return true; }
te_status create_best(Backend **out) { return create("cpu", BEST_GEMM, out); }
te_status create_builtin(Backend **out) { return create("cpu-builtin", GEMM_BUILTIN, out); }

const BackendReg CPU_REG{"cpu", HAVE_OPENBLAS ? "cpu:openblas" : "cpu:builtin", always, create_best};
const BackendReg CPU_BUILTIN_REG{"cpu-builtin", "cpu:builtin", always, create_builtin};

}  // namespace

const BackendReg &cpu_reg() { return CPU_REG; }
const BackendReg &cpu_builtin_reg() { return CPU_BUILTIN_REG; }

GemmImpl cpu::gemm_of(const Backend &be) { return static_cast<const CpuContext *>(be.context)->gemm; }

te_status cpu::gemm(Backend &be, bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
  sgemm(gemm_of(be), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return TE_OK;
}

}  // namespace tuft
