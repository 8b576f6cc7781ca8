// Loads the native addon (engines/native/build/Release/tuft_engine.node) and types its surface.
// Every method runs on the engine's own native thread and returns a Promise.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { LoraSpec } from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import { packageRoot } from '../package-root.js'
import { chooseOpenblasCore } from './openblas-core.js'

export interface NativeModelInfo {
  arch: string
  /** The backend the engine runs on: "cpu", "cpu-builtin". */
  backend: string
  /** What computes: "cpu:openblas", "cpu:builtin". */
  device: string
  /** Worker threads. */
  threads: number
  vocabSize: number
  hiddenSize: number
  nLayers: number
  nHeads: number
  nKvHeads: number
  headDim: number
  intermediateSize: number
  maxPosition: number
  tieWordEmbeddings: boolean
}

export interface NativeOpenOptions {
  /** 0 = one per core. */
  threads: number
  maxLoraRank: number
  /** 0 = the model's max_position_embeddings. */
  maxSeqLen: number
  /** Sampler KV cache budget in MiB; 0 = the engine's default. */
  kvCacheMb: number
  /** "auto" (the best available) or a registered backend's name (see NativeBinding.backends). */
  backend: string
}

/** A compute backend of this build (include/engine.h te_backend_desc). */
export interface NativeBackend {
  name: string
  device: string
  /** false: registered, but unable to run on this machine. */
  available: boolean
}

export interface NativeTrainItem {
  /** null: the base model, forward only. */
  adapterId: string | null
  tokens: Int32Array
  targets: Int32Array
  k: number
  lossFn: string
  weights?: Float32Array
  logprobs?: Float32Array
  advantages?: Float32Array
  clipLow?: Float32Array
  clipHigh?: Float32Array
  clipLowThreshold: number
  clipHighThreshold: number
  beta: number
  forwardOnly: boolean
}

export interface NativeAdam {
  learningRate: number
  beta1: number
  beta2: number
  eps: number
  weightDecay: number
  gradClipNorm: number
}

export interface NativeSampleRequest {
  adapterId: string | null
  prompt: Int32Array
  numSamples: number
  maxTokens: number
  temperature: number
  topK: number
  topP: number
  seed: bigint
  stopTokens: Int32Array
  /** UTF-8 bytes of each stop string. */
  stopStrings: Uint8Array[]
  promptLogprobs: boolean
  topkPromptLogprobs: number
}

export interface NativeSampleResult {
  sequences: { tokens: Int32Array; logprobs: Float32Array; stopReason: 'stop' | 'length' }[]
  promptLength: number
  promptLogprobs?: Float32Array
  topkIds?: Int32Array
  topkLogprobs?: Float32Array
  topkK?: number
}

/** Rejections carry `code`: a te_status name (TE_EINVAL, ...), ENGINE_CLOSED or ABORTED. */
export interface NativeEngine {
  open(modelDir: string, opts: NativeOpenOptions): Promise<NativeModelInfo>
  createAdapter(id: string, lora: LoraSpec): Promise<void>
  dropAdapter(id: string): Promise<void>
  snapshotAdapter(srcId: string, dstId: string): Promise<void>
  saveAdapter(id: string, dir: string, withOptimizer: boolean): Promise<void>
  loadAdapter(id: string, dir: string, withOptimizer: boolean): Promise<void>
  exportPeft(id: string, dir: string): Promise<void>
  importPeft(id: string, dir: string): Promise<void>
  forwardBackward(items: NativeTrainItem[]): Promise<{ logprobs: Float32Array; loss: number }[]>
  optimStep(id: string, adam: NativeAdam): Promise<{ gradNorm: number; step: number }>
  /** bytes: every token's byte string concatenated; lens: [V] their lengths. */
  setTokenBytes(bytes: Uint8Array, lens: Int32Array): Promise<void>
  /** Settles when the request finishes; requestId is the caller's, for cancelSample. */
  sample(requestId: number, req: NativeSampleRequest): Promise<NativeSampleResult>
  /** true when the request was still queued or running (its sample() rejects with ABORTED). */
  cancelSample(requestId: number): Promise<boolean>
  /** Queued jobs finish, running sample requests fail with ENGINE_CLOSED, the thread is joined. */
  close(): Promise<void>
}

export interface NativeBinding {
  Engine: new () => NativeEngine
  /** Registered backends in order of preference; "auto" takes the first available one. */
  backends(): NativeBackend[]
}

/** Beside the C++ sources, also when this file runs compiled from dist/. */
const BUILD_DIR = join(packageRoot(), 'engines', 'native', 'build')
const CANDIDATES = [join(BUILD_DIR, 'Release', 'tuft_engine.node'), join(BUILD_DIR, 'tuft_engine.node')]

/** The addon (node's require cache loads it once); a clear TUFT_ENGINE error when it was not built. */
export function loadBinding(): NativeBinding {
  const file = CANDIDATES.find((f) => existsSync(f))
  if (file === undefined) {
    throw tuftError(
      'TUFT_ENGINE',
      `The native engine is not built (looked for ${CANDIDATES.join(', ')}): run \`npm run build\``,
    )
  }
  chooseOpenblasCore()
  const require = createRequire(import.meta.url)
  try {
    return require(file) as NativeBinding
  } catch (cause) {
    throw tuftError('TUFT_ENGINE', `Cannot load the native engine ${file}: ${(cause as Error).message}`, {
      cause,
    })
  }
}
