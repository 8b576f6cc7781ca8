// Input checks before anything reaches the native engine (which checks again): token ids in range,
// lengths consistent, no NaN/Inf. Failures are TUFT_BAD_REQUEST errors naming the offending field.
import type { AdamParams, LoraSpec, SampleJob, TrainItem } from '../../core/engine.js'
import { LOSS_FNS } from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import type { NativeTrainItem } from './binding.js'

export interface Limits {
  vocabSize: number
  maxContext: number
  maxLoraRank: number
}

function bad(message: string): never {
  throw tuftError('TUFT_BAD_REQUEST', message)
}

function checkIds(ids: Int32Array, vocabSize: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!
    if (t < 0 || t >= vocabSize) bad(`${what}[${i}] = ${t} is outside the vocabulary [0, ${vocabSize})`)
  }
}

function checkFinite(values: Float32Array, length: number, what: string): void {
  if (values.length !== length) bad(`${what} has ${values.length} values, expected ${length}`)
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) bad(`${what}[${i}] is not a finite number`)
  }
}

function checkInt(value: number, min: number, what: string): void {
  if (!Number.isInteger(value) || value < min) bad(`${what} must be an integer >= ${min}, got ${value}`)
}

/** Per-loss defaults of loss_fn_config (spec §5.4). */
const LOSS_DEFAULTS: Record<
  string,
  { clip_low_threshold: number; clip_high_threshold: number; beta: number }
> = {
  ppo: { clip_low_threshold: 0.8, clip_high_threshold: 1.2, beta: 0 },
  cispo: { clip_low_threshold: 0.0, clip_high_threshold: 4.0, beta: 0 },
  dro: { clip_low_threshold: 0, clip_high_threshold: 0, beta: 0.01 },
}

/** Validates one datum and translates it to the binding's form. */
export function toNativeItem(item: TrainItem, index: number, limits: Limits): NativeTrainItem {
  const at = `datum ${index}`
  const n = item.tokens.length
  if (n === 0) bad(`${at}: model_input is empty`)
  if (n > limits.maxContext) bad(`${at}: ${n} tokens exceed the model's context of ${limits.maxContext}`)
  checkInt(item.k, 1, `${at}: k`)
  if (!(LOSS_FNS as readonly string[]).includes(item.lossFn)) bad(`${at}: unknown loss_fn '${item.lossFn}'`)
  checkIds(item.tokens, limits.vocabSize, `${at}: model_input`)
  if (item.targets.length !== n * item.k) {
    bad(`${at}: target_tokens has ${item.targets.length} values, expected ${n} x ${item.k}`)
  }
  checkIds(item.targets, limits.vocabSize, `${at}: target_tokens`)
  const out: NativeTrainItem = {
    adapterId: item.adapterId,
    tokens: item.tokens,
    targets: item.targets,
    k: item.k,
    lossFn: item.lossFn,
    clipLowThreshold: 0,
    clipHighThreshold: 0,
    beta: 0,
    forwardOnly: item.forwardOnly,
  }
  if (item.lossFn === 'cross_entropy') {
    // A datum without weights trains on every position, the usual SFT default.
    const weights = item.weights ?? new Float32Array(n * item.k).fill(1)
    checkFinite(weights, n * item.k, `${at}: weights`)
    out.weights = weights
    return out
  }
  // RL losses: one target per position, sampler logprobs and advantages required; weights ignored.
  if (item.k !== 1) bad(`${at}: ${item.lossFn} takes 1-D target_tokens`)
  if (item.logprobs === undefined) bad(`${at}: ${item.lossFn} requires logprobs`)
  if (item.advantages === undefined) bad(`${at}: ${item.lossFn} requires advantages`)
  checkFinite(item.logprobs, n, `${at}: logprobs`)
  checkFinite(item.advantages, n, `${at}: advantages`)
  out.logprobs = item.logprobs
  out.advantages = item.advantages
  const defaults = LOSS_DEFAULTS[item.lossFn]
  const config = (key: 'clip_low_threshold' | 'clip_high_threshold' | 'beta'): number => {
    const v = item.lossConfig[key] ?? defaults?.[key] ?? 0
    if (!Number.isFinite(v)) bad(`${at}: loss_fn_config.${key} is not a finite number`)
    return v
  }
  out.clipLowThreshold = config('clip_low_threshold')
  out.clipHighThreshold = config('clip_high_threshold')
  out.beta = config('beta')
  if (item.clipLow !== undefined) {
    checkFinite(item.clipLow, n, `${at}: clip_low_threshold`)
    out.clipLow = item.clipLow
  }
  if (item.clipHigh !== undefined) {
    checkFinite(item.clipHigh, n, `${at}: clip_high_threshold`)
    out.clipHigh = item.clipHigh
  }
  return out
}

export function checkLora(lora: LoraSpec, limits: Limits): void {
  checkInt(lora.rank, 1, 'rank')
  if (lora.rank > limits.maxLoraRank)
    bad(`rank ${lora.rank} exceeds the maximum LoRA rank ${limits.maxLoraRank}`)
  if (!Number.isFinite(lora.alpha) || lora.alpha <= 0)
    bad(`alpha must be a positive number, got ${lora.alpha}`)
  checkInt(lora.seed, 0, 'seed')
  if (!lora.trainAttn && !lora.trainMlp && !lora.trainUnembed)
    bad('the adapter must train at least one target')
}

export function checkAdam(adam: AdamParams): void {
  for (const [key, value] of Object.entries(adam)) {
    if (!Number.isFinite(value)) bad(`adam_params.${key} is not a finite number`)
  }
  if (adam.learningRate < 0) bad('learning_rate must not be negative')
  if (adam.beta1 < 0 || adam.beta1 >= 1 || adam.beta2 < 0 || adam.beta2 >= 1)
    bad('beta1 and beta2 must lie in [0, 1)')
  if (adam.eps <= 0) bad('eps must be positive')
  if (adam.gradClipNorm < 0) bad('grad_clip_norm must not be negative')
}

export function checkSampleJob(job: SampleJob, limits: Limits): void {
  const p = job.prompt.length
  if (p === 0) bad('the prompt is empty')
  checkIds(job.prompt, limits.vocabSize, 'prompt')
  checkInt(job.numSamples, 1, 'num_samples')
  checkInt(job.maxTokens, 0, 'max_tokens')
  if (p + job.maxTokens > limits.maxContext) {
    bad(
      `prompt (${p} tokens) + max_tokens (${job.maxTokens}) exceed the model's context of ${limits.maxContext}`,
    )
  }
  if (!Number.isFinite(job.temperature) || job.temperature < 0) bad('temperature must be a number >= 0')
  if (!Number.isInteger(job.topK)) bad('top_k must be an integer')
  if (!Number.isFinite(job.topP) || job.topP <= 0 || job.topP > 1) bad('top_p must lie in (0, 1]')
  checkIds(Int32Array.from(job.stopTokens), limits.vocabSize, 'stop token')
  if (job.stopStrings.some((s) => s.length === 0)) bad('stop strings must not be empty')
  checkInt(job.topkPromptLogprobs, 0, 'topk_prompt_logprobs')
  if (job.topkPromptLogprobs > limits.vocabSize) bad('topk_prompt_logprobs exceeds the vocabulary size')
}
