// cpu.h — the CPU backends: the readable reference implementation of every op of the table, on the
// engine's worker pool (common/pool.h: the pool installed for the calling thread). Two entries share
// the code and differ in the general GEMM: "cpu" (OpenBLAS when the build found it, else the built-in
// kernel) and "cpu-builtin" (always the built-in kernel), so that two real implementations can be
// compared wherever OpenBLAS is installed.
#pragma once
#include "../backend/registry.h"
#include "gemm.h"

namespace tuft {

const BackendReg &cpu_reg();
const BackendReg &cpu_builtin_reg();

namespace cpu {

// The GEMM an instance was created with (its context).
GemmImpl gemm_of(const Backend &be);

// The ops, declared through their signature types (src/ops/); defined in the files named beside them.
Gemm gemm;                                  // backend_cpu.cc
LinearForward linear_forward;               // linear.cc
LinearBackward linear_backward;
LoraForward lora_forward;
LoraBackward lora_backward;
AttentionForward attention_forward;         // attention.cc
AttentionBackward attention_backward;
RmsnormForward rmsnorm_forward;             // rmsnorm.cc
RmsnormBackward rmsnorm_backward;
RopeForward rope_forward;                   // rope.cc
RopeBackward rope_backward;
SwigluForward swiglu_forward;               // swiglu.cc
SwigluBackward swiglu_backward;
EmbeddingForward embedding_forward;         // embedding.cc
Add add;                                    // tensor.cc
CopyRows copy_rows;
HeadLoss head_loss;                         // head_loss.cc
GradSqNorm grad_sq_norm;                    // adamw.cc
Adamw adamw;
KvWrite kv_write;                           // kv.cc
KvCopy kv_copy;
KvAttention kv_attention;

}  // namespace cpu
}  // namespace tuft
