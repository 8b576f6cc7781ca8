// The engine interface: what the scheduler hands to a training or sampling engine (ARCHITECTURE §4).
// Tensors cross this boundary as typed arrays; ids are minted by the server, never by clients.

import type { Static, TSchema } from '@sinclair/typebox'
import type { Logger } from 'pino'

/** Server-minted adapter id (one per training run, one per sampler snapshot). */
export type AdapterId = string

export const LOSS_FNS = ['cross_entropy', 'importance_sampling', 'ppo', 'cispo', 'dro'] as const
export type LossFn = (typeof LOSS_FNS)[number]

/** The one LoRA configuration: engines take it, and run and checkpoint records store it as is. */
export type LoraSpec = {
  rank: number
  /** PEFT lora_alpha; the scale applied is alpha / rank. */
  alpha: number
  /** Seed for the Kaiming-uniform init of A (B starts at zero). */
  seed: number
  trainAttn: boolean
  trainMlp: boolean
  trainUnembed: boolean
}

/** One datum of a forward / forward_backward call, already validated against the model. */
export interface TrainItem {
  adapterId: AdapterId
  /** [N] input token ids. */
  tokens: Int32Array
  /** [N, K] target token ids, row-major; K = 1 for 1-D targets. */
  targets: Int32Array
  k: number
  lossFn: LossFn
  /** Scalars from loss_fn_config (clip_low_threshold, clip_high_threshold, beta), defaults applied. */
  lossConfig: Readonly<Record<string, number>>
  /** [N, K] for cross_entropy; [N] for the RL losses. */
  weights?: Float32Array
  /** [N] sampler log-probabilities q (RL losses). */
  logprobs?: Float32Array
  /** [N] advantages (RL losses). */
  advantages?: Float32Array
  /** [N] per-token clip thresholds overriding lossConfig (ppo, cispo). */
  clipLow?: Float32Array
  clipHigh?: Float32Array
  /** true: compute outputs and loss, accumulate no gradient. */
  forwardOnly: boolean
}

export interface TrainItemResult {
  /** [N, K] target log-probabilities under the weights as they were for this pass. */
  logprobs: Float32Array
  /** This datum's summed loss. */
  loss: number
}

export interface AdamParams {
  learningRate: number
  beta1: number
  beta2: number
  eps: number
  weightDecay: number
  gradClipNorm: number
}

/** Adam's settings as the Tinker API names them (`adam_params`; the reference fixtures use the same). */
export interface WireAdamParams {
  learning_rate: number
  beta1: number
  beta2: number
  eps: number
  weight_decay: number
  grad_clip_norm: number
}

export function adamParamsOf(a: WireAdamParams): AdamParams {
  return {
    learningRate: a.learning_rate,
    beta1: a.beta1,
    beta2: a.beta2,
    eps: a.eps,
    weightDecay: a.weight_decay,
    gradClipNorm: a.grad_clip_norm,
  }
}

export interface OptimResult {
  /** Global L2 norm of the accumulated gradients before clipping. */
  gradNorm: number
  /** The adapter's step counter after this step. */
  step: number
}

export interface EngineInfo {
  device: string
  vocabSize: number
  maxContext: number
  maxLoraRank: number
  /** e.g. 'qwen3', 'qwen2', 'llama'. */
  arch: string
}

/** Files written by save/export, relative to the target directory, with their sizes. */
export interface Manifest {
  files: { name: string; bytes: number }[]
}

/**
 * Where a sampler finds adapter weights: a snapshot its own provider's training engine took in this
 * process, or PEFT files (adapter_config.json + adapter_model.safetensors) at a URI. The URI is what the
 * engine's AdapterStaging returned for the server's local copy: a `file:` URL when the engine has none
 * (same host or a shared volume); an engine on another host stages the files where it can read them.
 */
export type AdapterRef = { kind: 'snapshot'; id: AdapterId } | { kind: 'peft'; id: AdapterId; uri: string }

/**
 * How PEFT files on the server's host reach a sampling engine. Core calls `stage` before loadAdapter and
 * `release` after unloadAdapter. A remote engine (a vLLM server loading LoRA adapters by path or URL)
 * copies or uploads the directory, or publishes it over HTTP, and returns the URI it will load from.
 */
export interface AdapterStaging {
  /** `dir` stays unchanged until `release`; returns the URI put in the AdapterRef. */
  stage(id: AdapterId, dir: string): Promise<string>
  release(id: AdapterId, uri: string): Promise<void>
}

/** An engine's own view of itself; health() never throws and answers quickly (no engine work). */
export interface EngineHealth {
  ok: boolean
  /** Why not ok, or a short state worth reporting (e.g. "closed"). */
  message?: string
}

/** Who an engine call serves: one entry per request fused into the call (telemetry links, usage). */
export interface RequestTrace {
  requestId: string
  userId: string
  sessionId?: string
  trainingRunId?: string
  samplingSessionId?: string
  /** The OpenTelemetry context captured when the request arrived (opaque to engines). */
  otelContext?: unknown
}

export interface StepOptions {
  requests: RequestTrace[]
}

/** Resident bytes of training, for the server's memory admission (server.memory_budget_bytes). */
export interface MemoryEstimate {
  /** One adapter that trains: weights, gradients and optimizer moments. */
  adapterBytes: number
  /** Held once per model however many adapters train: base weights, the activation workspace. */
  sharedBytes: number
}

export interface TrainingEngine {
  readonly info: EngineInfo
  /**
   * What an adapter of this spec will hold once it trains, with forwardBackward calls of up to
   * EngineContext.maxBatchTokens tokens. Optional: core estimates from the model's config.json shapes
   * (fp32, core/domain/memory.ts) when it is absent.
   */
  estimateMemory?(lora: LoraSpec): MemoryEstimate
  createAdapter(id: AdapterId, lora: LoraSpec): Promise<void>
  dropAdapter(id: AdapterId): Promise<void>
  /** Items may belong to different adapters: the engine fuses them into one pass over the base model. */
  forwardBackward(items: TrainItem[], o?: StepOptions): Promise<TrainItemResult[]>
  optimStep(id: AdapterId, adam: AdamParams, o?: StepOptions): Promise<OptimResult>
  /** Training checkpoint: adapter weights, LoRA config and (optionally) optimizer moments + step. */
  saveState(id: AdapterId, dir: string, opts: { optimizer: boolean }, o?: StepOptions): Promise<Manifest>
  /** Replaces weights (and optimizer state when asked; otherwise resets it); discards gradients. */
  loadState(id: AdapterId, dir: string, opts: { optimizer: boolean }, o?: StepOptions): Promise<void>
  /**
   * PEFT layout: adapter_model.safetensors + adapter_config.json. `id` is a training adapter or a snapshot
   * taken by snapshotAdapter and not yet unloaded (a durable store persists ephemeral samplers so).
   */
  exportAdapter(id: AdapterId, dir: string, o?: StepOptions): Promise<Manifest>
  /**
   * Cheap in-memory copy of the current adapter weights under `snapshotId`; required when the provider
   * declares `snapshots: 'shared-memory'` (core calls it only then). Samplers of the same provider load
   * it as `{ kind: 'snapshot', id: snapshotId }`; exportAdapter writes it; unloadAdapter frees it.
   */
  snapshotAdapter?(id: AdapterId, snapshotId: AdapterId, o?: StepOptions): Promise<void>
  health(): Promise<EngineHealth>
  close(): Promise<void>
}

export type StopReason = 'stop' | 'length'

export interface SampleJob {
  /** null: the base model alone. */
  adapter: AdapterRef | null
  /** [P] prompt token ids. */
  prompt: Int32Array
  numSamples: number
  maxTokens: number
  /** 0 means greedy. */
  temperature: number
  /** <= 0 disables. */
  topK: number
  /** 1 disables. */
  topP: number
  seed: bigint
  stopTokens: number[]
  stopStrings: string[]
  promptLogprobs: boolean
  topkPromptLogprobs: number
  /** Aborted when the client went away: the engine drops the request. */
  signal?: AbortSignal
}

export interface SampledSequence {
  tokens: Int32Array
  logprobs: Float32Array
  stopReason: StopReason
}

export interface SampleResult {
  sequences: SampledSequence[]
  /** [P]; index 0 is NaN. */
  promptLogprobs?: Float32Array
  /** Dense [P, K] matrices, best first; unused cells are (0, -99999). */
  topkPromptLogprobs?: { tokenIds: Int32Array; logprobs: Float32Array; k: number; promptLength: number }
}

export interface SamplingEngine {
  readonly info: EngineInfo
  /** Absent: the engine reads `file:` URIs of the server's own directories. */
  readonly staging?: AdapterStaging
  loadAdapter(ref: AdapterRef): Promise<void>
  unloadAdapter(ref: AdapterRef): Promise<void>
  /** Continuous batching inside: concurrent calls share passes over the base weights. */
  sample(job: SampleJob, o?: StepOptions): Promise<SampleResult>
  health(): Promise<EngineHealth>
  close(): Promise<void>
}

export interface EngineContext {
  /** Name clients use as base_model. */
  modelName: string
  /** Hugging Face model directory (config.json, safetensors, tokenizer files). */
  modelPath: string
  maxModelLen: number
  maxLoraRank: number
  /** Sampler adapters kept resident at once (max_loras); the server unloads the least recently used beyond it. */
  maxLoras: number
  /**
   * Token budget of one forwardBackward call (server.max_batch_tokens): the scheduler fuses no more than
   * this; an engine splits a single larger submission itself (losses are sums, so results are the same).
   */
  maxBatchTokens: number
  log: Logger
}

/**
 * What a provider's engines can do. Core reads this (never the provider's name) and the conformance
 * suite checks every promise in it.
 */
export interface EngineCapabilities {
  /**
   * How the training engine hands a sampler a point-in-time copy of an adapter. 'shared-memory':
   * snapshotAdapter copies it in process. 'peft-files': core exports it (exportAdapter) to a directory
   * and stages the files for the sampling engine.
   */
  snapshots: 'shared-memory' | 'peft-files'
  /**
   * The provider's sampling engines load `{ kind: 'snapshot' }` refs of snapshots its training engines of
   * the same model took (same provider object, same process). Needs `snapshots: 'shared-memory'`.
   */
  sampleFromTrainingSnapshot: boolean
  /** Losses forwardBackward computes; core answers other loss_fn values with a 400. */
  losses: readonly LossFn[]
  /** Largest LoRA rank the engines accept; config's max_lora_rank is capped to it. */
  maxLoraRank: number
  /**
   * Hugging Face architectures (config.json `architectures`) the engines load, e.g. 'Qwen3ForCausalLM'.
   * The conformance suite checks these against the PyTorch reference fixtures; empty (an engine that is
   * not a transformer, or one checked elsewhere) runs no reference numerics.
   */
  architectures: readonly string[]
}

/** A provider is a name, a config schema, declared capabilities and factories (one per role it has). */
export interface EngineProvider<S extends TSchema = TSchema> {
  name: string
  capabilities: EngineCapabilities
  configSchema: S
  createTraining?(cfg: Static<S>, ctx: EngineContext): Promise<TrainingEngine>
  createSampling?(cfg: Static<S>, ctx: EngineContext): Promise<SamplingEngine>
}
