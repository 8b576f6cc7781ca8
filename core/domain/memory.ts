// Training memory estimates for memory admission (server.memory_budget_bytes), from a model's shapes: what
// one LoRA adapter that trains keeps resident (fp32 weights, gradients and two AdamW moments) and what a
// model's training shares (fp32 base weights and one activation workspace of max_batch_tokens tokens).
// Engines that know their own layout better answer TrainingEngine.estimateMemory instead.

import type { LoraSpec, MemoryEstimate } from '../engine.js'

/** The shapes of a decoder-only transformer (Hugging Face config.json names in the comments). */
export interface ModelShape {
  hiddenSize: number // hidden_size
  intermediateSize: number // intermediate_size
  layers: number // num_hidden_layers
  heads: number // num_attention_heads
  kvHeads: number // num_key_value_heads (default: heads)
  headDim: number // head_dim (default: hidden_size / heads)
  vocabSize: number // vocab_size
  tiedEmbeddings: boolean // tie_word_embeddings
}

const F32 = 4

/** The shapes in a Hugging Face config.json (or its text_config), or null when it does not say them. */
export function shapeFromHfConfig(config: unknown): ModelShape | null {
  if (typeof config !== 'object' || config === null) return null
  const outer = config as Record<string, unknown>
  const text = (outer.text_config as Record<string, unknown> | undefined) ?? outer
  const int = (key: string): number | null => {
    const v = text[key] ?? outer[key]
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null
  }
  const hiddenSize = int('hidden_size')
  const intermediateSize = int('intermediate_size')
  const layers = int('num_hidden_layers')
  const heads = int('num_attention_heads')
  const vocabSize = int('vocab_size')
  if (!hiddenSize || !intermediateSize || !layers || !heads || !vocabSize) return null
  return {
    hiddenSize,
    intermediateSize,
    layers,
    heads,
    kvHeads: int('num_key_value_heads') ?? heads,
    headDim: int('head_dim') ?? Math.floor(hiddenSize / heads),
    vocabSize,
    tiedEmbeddings: (text.tie_word_embeddings ?? outer.tie_word_embeddings) === true,
  }
}

/** Trainable parameters of a LoRA adapter: rank × (in + out) for every target matrix. */
export function loraParams(s: ModelShape, lora: LoraSpec): number {
  const C = s.hiddenSize
  const Q = s.heads * s.headDim
  const KV = s.kvHeads * s.headDim
  const FF = s.intermediateSize
  let perLayer = 0
  if (lora.trainAttn) perLayer += C + Q + 2 * (C + KV) + Q + C
  if (lora.trainMlp) perLayer += 3 * (C + FF)
  const head = lora.trainUnembed ? C + s.vocabSize : 0
  return lora.rank * (s.layers * perLayer + head)
}

/** Base model parameters (embeddings, attention, MLP, norms, LM head unless tied). */
function baseParams(s: ModelShape): number {
  const C = s.hiddenSize
  const Q = s.heads * s.headDim
  const KV = s.kvHeads * s.headDim
  const perLayer = C * (Q + 2 * KV) + Q * C + 3 * C * s.intermediateSize + 2 * C
  return s.layers * perLayer + s.vocabSize * C * (s.tiedEmbeddings ? 1 : 2) + C
}

/** Floats of the activations kept for backward and of the backward scratch, per token. */
function activationFloatsPerToken(s: ModelShape, rank: number): number {
  const C = s.hiddenSize
  const Q = s.heads * s.headDim
  const KV = s.kvHeads * s.headDim
  const FF = s.intermediateSize
  const forward =
    s.layers * (4 * C + Q + 2 * KV + 2 * Q + KV + 2 * s.heads + s.kvHeads + 3 * FF + 7 * rank + 2)
  const backward = 4 * C + 3 * FF + 4 * Q + KV + (Q + 2 * KV) + rank
  return forward + 2 * C + backward
}

/** The LM head's logits are computed in blocks of at most 2^25 (128 MiB of fp32). */
const HEAD_BLOCK_FLOATS = 2 ** 25

export function estimateTrainingMemory(
  s: ModelShape,
  lora: LoraSpec,
  maxBatchTokens: number,
): MemoryEstimate {
  const activations =
    maxBatchTokens * activationFloatsPerToken(s, lora.rank) +
    Math.min(maxBatchTokens * s.vocabSize, HEAD_BLOCK_FLOATS)
  return {
    // Weights, gradients and the two AdamW moments.
    adapterBytes: 4 * F32 * loraParams(s, lora),
    sharedBytes: F32 * (baseParams(s) + activations),
  }
}
