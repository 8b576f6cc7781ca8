/* engine.h — the C ABI of the native LoRA engine (ARCHITECTURE §5).
 *
 * Plain C: opaque handles, status codes, a thread-local last-error text. No Node or CUDA types, so
 * the core is usable and testable without Node. One engine = one base model (frozen, shared by every
 * adapter) + many LoRA adapters addressed by server-minted string ids.
 *
 * Threading contract: all calls on one te_engine come from one thread at a time (the binding runs a
 * dedicated engine thread per engine); the engine may use its own worker threads internally.
 * Errors are returned, never exit()/abort(): one tenant's bad input must not kill the server.
 * Dimension vocabulary: B batch rows, T tokens, C hidden, V vocab, K top-K targets, R LoRA rank. */
#ifndef TUFT_ENGINE_H
#define TUFT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TE_OK = 0,
  TE_EINVAL = 1,       /* bad argument: shape, token id out of range, NaN/Inf, rank over the limit */
  TE_ENOTFOUND = 2,    /* unknown adapter id or request handle, missing file or tensor */
  TE_EIO = 3,          /* file system error */
  TE_EUNSUPPORTED = 4, /* unsupported architecture, dtype or option */
  TE_ENOMEM = 5,
  TE_EINTERNAL = 6,
} te_status;

/* "file:line: message" for the last non-OK status returned on the calling thread. */
const char *te_last_error(void);

typedef struct te_engine te_engine;

/* ---- backends ---------------------------------------------------------------------------------- */

/* A compute backend this build registers. "auto" picks the first available one that supports every
 * op of the model; the CPU backends come last: "cpu" (OpenBLAS when the build found it, else the
 * built-in GEMM) and "cpu-builtin" (always the built-in GEMM). */
typedef struct {
  const char *name;   /* "cpu", "cpu-builtin", … (static storage) */
  const char *device; /* what it computes on: "cpu:openblas", "cpu:builtin" */
  int available;      /* 0: registered but unable to run on this machine */
} te_backend_desc;

/* Registered backends in order of preference; i in [0, te_backend_count()). */
int te_backend_count(void);
te_status te_backend_info(int i, te_backend_desc *out);

/* ---- engine ------------------------------------------------------------------------------------ */

typedef struct {
  int n_threads;       /* 0 = one per core */
  int max_lora_rank;   /* adapters with a larger rank are rejected */
  int max_seq_len;     /* 0 = the model's max_position_embeddings */
  const char *backend; /* NULL or "auto" = the best available; else a te_backend_desc name. Unknown or
                          unavailable: TE_EUNSUPPORTED naming the backends, before the model is read */
} te_engine_options;

typedef struct {
  char arch[16];    /* "qwen3" | "qwen2" | "llama" */
  char backend[32]; /* the backend the engine runs on: "cpu", "cpu-builtin" */
  char device[64];  /* what computes: "cpu:openblas", "cpu:builtin" */
  int n_threads;    /* worker threads */
  int vocab_size;   /* V */
  int hidden_size;  /* C */
  int n_layers;
  int n_heads;
  int n_kv_heads;
  int head_dim;
  int intermediate_size;
  int max_position;
  int tie_word_embeddings;
} te_model_info;

/* Loads a Hugging Face model directory: config.json + model.safetensors or a sharded index. */
te_status te_engine_create(const char *model_dir, const te_engine_options *opts, te_engine **out);
void te_engine_destroy(te_engine *e);
te_status te_engine_info(const te_engine *e, te_model_info *out);

/* ---- adapters ---------------------------------------------------------------------------------- */

typedef struct {
  int rank;     /* R */
  float alpha;  /* PEFT lora_alpha; scale = alpha / rank */
  uint64_t seed; /* Kaiming-uniform init of A; B starts at zero */
  int train_attn;    /* q, k, v, o */
  int train_mlp;     /* gate, up, down */
  int train_unembed; /* lm_head */
} te_lora_config;

te_status te_adapter_create(te_engine *e, const char *id, const te_lora_config *cfg);
te_status te_adapter_drop(te_engine *e, const char *id);
/* Inference-only copy of src's current weights under a new id (save_weights_and_get_sampling_client). */
te_status te_adapter_snapshot(te_engine *e, const char *src_id, const char *dst_id);

/* ---- training ---------------------------------------------------------------------------------- */

typedef enum {
  TE_LOSS_CROSS_ENTROPY = 0,
  TE_LOSS_IMPORTANCE_SAMPLING = 1,
  TE_LOSS_PPO = 2,
  TE_LOSS_CISPO = 3,
  TE_LOSS_DRO = 4,
} te_loss;

/* One datum. Inputs are borrowed for the duration of the call; outputs are written by the call. */
typedef struct {
  const char *adapter_id;  /* NULL = base model, forward only */
  const int32_t *tokens;   /* [T] input ids */
  int n_tokens;            /* T */
  const int32_t *targets;  /* [T, K] target ids */
  int k;                   /* K; 1 for 1-D targets */
  te_loss loss;
  const float *weights;    /* [T, K] cross_entropy weights (required for it), else NULL */
  const float *logprobs;   /* [T] sampler logprobs q (RL losses), else NULL */
  const float *advantages; /* [T] (RL losses), else NULL */
  const float *clip_low;   /* [T] per-token override or NULL */
  const float *clip_high;  /* [T] per-token override or NULL */
  float clip_low_threshold;  /* ppo 0.8, cispo 0.0 */
  float clip_high_threshold; /* ppo 1.2, cispo 4.0 */
  float beta;                /* dro */
  int forward_only;          /* 1: no gradient accumulation for this datum */
  float *out_logprobs;       /* [T, K] written: target logprobs */
  double *out_loss;          /* written: this datum's summed loss */
} te_train_item;

/* One fused pass: the base model runs once over all items, each row applies its own adapter.
 * Parameter gradients accumulate (+=) into each adapter until te_optim_step. All items are
 * validated before any work; on error nothing is accumulated. */
te_status te_forward_backward(te_engine *e, te_train_item *items, int n_items);

typedef struct {
  float learning_rate;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;   /* decoupled (AdamW) */
  float grad_clip_norm; /* 0 = no clipping; else clip the global L2 norm */
} te_adam_params;

/* Clip, AdamW (bias correction by the adapter's own step counter), zero the gradients. */
te_status te_optim_step(te_engine *e, const char *id, const te_adam_params *p, double *out_grad_norm,
                        int64_t *out_step);

/* ---- state ------------------------------------------------------------------------------------- */

/* Training state into dir (which must exist): adapter_model.safetensors (PEFT names),
 * adapter_config.json, and with_optimizer: optimizer.safetensors (moments) + step counter. */
te_status te_adapter_save(te_engine *e, const char *id, const char *dir, int with_optimizer);
/* Replaces weights; restores the optimizer when asked, else resets it; zeroes gradients. The
 * adapter must exist and match the saved rank and targets. */
te_status te_adapter_load(te_engine *e, const char *id, const char *dir, int with_optimizer);
/* PEFT layout only (adapter_model.safetensors + adapter_config.json), loadable by Hugging Face PEFT. */
te_status te_adapter_export_peft(te_engine *e, const char *id, const char *dir);
/* Creates an inference-only adapter from a PEFT directory (a sampler checkpoint). */
te_status te_adapter_import_peft(te_engine *e, const char *id, const char *dir);

/* ---- sampling: continuous batching driven by the caller's thread ------------------------------- */

/* Byte string of every token id, so that stop strings are matched on generated bytes. */
te_status te_set_token_bytes(te_engine *e, const char *const *bytes, const int32_t *lens, int n_vocab);

typedef struct {
  const char *adapter_id; /* NULL = base model */
  const int32_t *prompt;  /* [P] copied at submit */
  int prompt_len;
  int num_samples;
  int max_tokens;
  float temperature; /* 0 = greedy */
  int top_k;         /* <= 0 disables */
  float top_p;       /* 1 disables */
  uint64_t seed;
  const int32_t *stop_tokens;
  int n_stop_tokens;
  const char *const *stop_strings; /* UTF-8 byte strings, copied at submit */
  const int32_t *stop_string_lens;
  int n_stop_strings;
  int prompt_logprobs;      /* 1: fill prompt_logprobs */
  int topk_prompt_logprobs; /* K > 0: fill the top-K prompt matrices */
} te_sample_request;

/* KV cache budget in bytes, before the first request (0 = the default: 2 GiB, at most 64 sequences of
 * the maximum length). The cache is allocated once, at the first submit; TE_EINVAL after that. */
te_status te_sample_configure(te_engine *e, size_t kv_cache_bytes);

/* Queues a request; it joins the running batch at the next te_sample_step. */
te_status te_sample_submit(te_engine *e, const te_sample_request *r, uint64_t *out_handle);
/* One step: prefill newly admitted requests, decode one token for every running sequence.
 * *out_active = sequences still running after the step. */
te_status te_sample_step(te_engine *e, int *out_active);
/* Next finished request, or TE_ENOTFOUND when none is waiting. */
te_status te_sample_next_finished(te_engine *e, uint64_t *out_handle);

typedef struct {
  int num_sequences;
  const int32_t *const *tokens;  /* [num_sequences][lengths[i]] generated ids, stop token included */
  const float *const *logprobs;  /* [num_sequences][lengths[i]] */
  const int32_t *lengths;
  const int32_t *stop_reasons;   /* 0 stop, 1 length */
  const float *prompt_logprobs;  /* [P], index 0 NaN; NULL unless requested */
  const int32_t *topk_ids;       /* [P, K]; NULL unless requested */
  const float *topk_logprobs;    /* [P, K] */
  int topk_k;
  int prompt_len;
} te_sample_result;

/* Views into engine memory, valid until te_sample_release(handle). */
te_status te_sample_result_get(te_engine *e, uint64_t handle, te_sample_result *out);
void te_sample_release(te_engine *e, uint64_t handle);
/* Drops a queued or running request (client went away); its handle is released. */
te_status te_sample_cancel(te_engine *e, uint64_t handle);

#ifdef __cplusplus
}
#endif
#endif /* TUFT_ENGINE_H */
