// backend.h — the backend function table: everything the orchestrators (src/model, src/sample) ask of
// a compute device, as one C-style struct of function pointers per backend kind (the pattern of
// ggml's ggml-backend-impl.h), and the instance that carries one backend's context (CPU: which GEMM;
// a CUDA backend: its stream and library handles). Orchestrators call through the table, never a
// backend directly; registry.h lists the backends and creates one per engine.
//
// The contract of every op (signatures: one header per op in src/ops/):
//   - tensors (float / double pointers) are backend memory, from alloc below: device pointers on a
//     device. Calls on one instance run in order, each seeing the results of the calls before it.
//     (The engine allocates its activations, scratch and KV cache here; base weights, LoRA adapters
//     and RoPE tables still live in host Buffers, which is backend memory only for a host_memory
//     backend: README, "Adding a backend");
//   - descriptors (token ids, positions, spans, LoRA groups, cache rows, loss terms) are host memory,
//     small, read during the call; the tensor pointers inside them are backend memory;
//   - failures return a te_status with the message left by TE_FAIL; nothing exits or aborts;
//   - argument order: outputs first (and what backward needs), then inputs, dimensions last;
//     backward writes its d-prefixed gradients first.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "../common/status.h"
#include "../ops/adamw.h"
#include "../ops/attention.h"
#include "../ops/embedding.h"
#include "../ops/head_loss.h"
#include "../ops/kv.h"
#include "../ops/linear.h"
#include "../ops/rmsnorm.h"
#include "../ops/rope.h"
#include "../ops/swiglu.h"
#include "../ops/tensor.h"

namespace tuft {

// Every op of the table, for supports() and for reports.
enum class Op {
  GEMM, LINEAR_FORWARD, LINEAR_BACKWARD, LORA_FORWARD, LORA_BACKWARD,
  ATTENTION_FORWARD, ATTENTION_BACKWARD, RMSNORM_FORWARD, RMSNORM_BACKWARD, ROPE_FORWARD, ROPE_BACKWARD,
  SWIGLU_FORWARD, SWIGLU_BACKWARD, EMBEDDING_FORWARD, ADD, COPY_ROWS, HEAD_LOSS, GRAD_SQ_NORM, ADAMW,
  KV_WRITE, KV_COPY, KV_ATTENTION,
  COUNT
};
const char *op_name(Op op);  // "rmsnorm_forward"

// The dimensions of a call, as much as a backend needs to say whether it runs it; 0 = any.
struct OpShape {
  int rows = 0;      // N rows (GEMM: M)
  int in = 0;        // input features: GEMM K, linear/LoRA in, RMSNorm D, SwiGLU FF, head V
  int out = 0;       // output features: GEMM N, linear/LoRA out
  int rank = 0;      // largest LoRA rank R
  int heads = 0;     // NH
  int kv_heads = 0;  // NKV
  int head_dim = 0;  // HD
};

// One op at the shape an engine will run it.
struct OpNeed {
  Op op;
  OpShape shape;
};

struct Backend;

struct BackendOps {
  // ---- the instance and its memory ----
  void (*destroy)(Backend *be);
  // Whether the backend runs `op` at this shape. Engines ask at creation for every op the model needs,
  // so a backend that cannot run a model is refused then, with the op named, not halfway through a step.
  bool (*supports)(const Backend &be, Op op, const OpShape &shape);
  te_status (*alloc)(Backend &be, size_t bytes, void **out);  // 64-byte aligned, contents undefined
  void (*free)(Backend &be, void *p);
  te_status (*zero)(Backend &be, void *dst, size_t bytes);
  te_status (*upload)(Backend &be, void *dst, const void *src, size_t bytes);    // host → backend
  te_status (*download)(Backend &be, void *dst, const void *src, size_t bytes);  // backend → host

  // ---- ops (src/ops/) ----
  Gemm *gemm;
  LinearForward *linear_forward;
  LinearBackward *linear_backward;
  LoraForward *lora_forward;
  LoraBackward *lora_backward;
  AttentionForward *attention_forward;
  AttentionBackward *attention_backward;
  RmsnormForward *rmsnorm_forward;
  RmsnormBackward *rmsnorm_backward;
  RopeForward *rope_forward;
  RopeBackward *rope_backward;
  SwigluForward *swiglu_forward;
  SwigluBackward *swiglu_backward;
  EmbeddingForward *embedding_forward;
  Add *add;
  CopyRows *copy_rows;
  HeadLoss *head_loss;
  GradSqNorm *grad_sq_norm;
  Adamw *adamw;
  KvWrite *kv_write;
  KvCopy *kv_copy;
  KvAttention *kv_attention;
};

// One backend instance; an engine owns one for its lifetime.
struct Backend {
  const BackendOps *op;
  std::string name;          // registry name: "cpu", "cpu-builtin"
  std::string device;        // what computes: "cpu:openblas", "cpu:builtin"
  bool host_memory = false;  // its memory is host memory: host code may read results in place
  void *context = nullptr;   // the backend's own state (CPU: its GEMM; CUDA: stream, handles)
};

struct BackendDestroy {
  void operator()(Backend *be) const {
    if (be) be->op->destroy(be);
  }
};
using BackendPtr = std::unique_ptr<Backend, BackendDestroy>;

// n floats of backend memory for host code: src itself on a host-memory backend, else a copy in staging.
te_status host_read(Backend &be, const float *src, size_t n, std::vector<float> &staging, const float **out);

}  // namespace tuft
