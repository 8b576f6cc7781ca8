// What every part of the engine conformance suite shares: the target (provider, options, model), engine
// contexts, deterministic inputs, and the assertions that name what an engine got wrong.

import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type {
  AdamParams,
  AdapterId,
  AdapterRef,
  EngineContext,
  EngineProvider,
  LoraSpec,
  LossFn,
  SampleJob,
  SamplingEngine,
  TrainItem,
  TrainingEngine,
} from '../../core/engine.js'
import { isTuftError } from '../../core/errors.js'
import { fileStaging } from '../../core/staging.js'

/** What the suite runs against. */
export interface Target {
  provider: EngineProvider
  /** The provider's options, defaults applied. */
  options: unknown
  /** The model directory behaviour checks open (the reference checks open each fixture's own). */
  modelPath: string
  /** EngineContext.maxLoraRank for behaviour checks. */
  maxLoraRank: number
}

export function context(t: Target, modelPath = t.modelPath, maxLoraRank = t.maxLoraRank): EngineContext {
  return {
    modelName: 'conformance',
    modelPath,
    maxModelLen: 0,
    maxLoraRank,
    maxLoras: 8,
    // The server's default token budget of one fused call.
    maxBatchTokens: 16384,
    log: pino({ level: 'silent' }),
  }
}

export function openTraining(t: Target, modelPath?: string): Promise<TrainingEngine> {
  return t.provider.createTraining!(t.options, context(t, modelPath))
}

export function openSampling(t: Target, modelPath?: string): Promise<SamplingEngine> {
  return t.provider.createSampling!(t.options, context(t, modelPath))
}

let counter = 0
/** A fresh adapter id (engines keep adapters until closed, so ids are never reused). */
export function uid(prefix: string): AdapterId {
  return `${prefix}-${++counter}`
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'tuft-engine-conformance-'))
}

/** n token ids below `vocab`, different for each salt. */
export function tokens(n: number, salt: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i * 131 + salt * 977 + 17) % vocab)
}

export function lora(rank: number, seed = 1): LoraSpec {
  return { rank, alpha: 2 * rank, seed, trainAttn: true, trainMlp: true, trainUnembed: false }
}

export const ADAM: AdamParams = {
  learningRate: 0.02,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0,
  gradClipNorm: 0,
}

/** The official loss_fn_config defaults (core applies them before an engine sees an item). */
export const LOSS_CONFIG: Record<LossFn, Record<string, number>> = {
  cross_entropy: {},
  importance_sampling: {},
  ppo: { clip_low_threshold: 0.8, clip_high_threshold: 1.2 },
  cispo: { clip_low_threshold: 0, clip_high_threshold: 4 },
  dro: { beta: 0.01 },
}

/** A cross-entropy datum: K targets per position, weights varied so that they matter. */
export function ceItem(
  adapterId: AdapterId,
  input: Int32Array,
  vocab: number,
  o: { k?: number; forwardOnly?: boolean } = {},
): TrainItem {
  const k = o.k ?? 1
  const n = input.length
  return {
    adapterId,
    tokens: input,
    targets: Int32Array.from(
      { length: n * k },
      (_, i) => (input[Math.floor(i / k)]! * 7 + i * 3 + 1) % vocab,
    ),
    k,
    lossFn: 'cross_entropy',
    lossConfig: {},
    weights: Float32Array.from({ length: n * k }, (_, i) => [1, 0.5, 0, 2][i % 4]!),
    forwardOnly: o.forwardOnly ?? false,
  }
}

/** An RL datum: sampler logprobs near what a small model gives, advantages of both signs. */
export function rlItem(
  adapterId: AdapterId,
  lossFn: LossFn,
  input: Int32Array,
  vocab: number,
  forwardOnly = true,
): TrainItem {
  const n = input.length
  return {
    adapterId,
    tokens: input,
    targets: Int32Array.from({ length: n }, (_, i) => (input[i]! * 5 + 2) % vocab),
    k: 1,
    lossFn,
    lossConfig: LOSS_CONFIG[lossFn],
    logprobs: Float32Array.from({ length: n }, (_, i) => -6 - 0.5 * (i % 5)),
    advantages: Float32Array.from({ length: n }, (_, i) => [1, -0.5, 2, 0.3, -1][i % 5]!),
    forwardOnly,
  }
}

/** Greedy, one sample, nothing extra, unless `over` says otherwise. */
export function sampleJob(prompt: Int32Array, over: Partial<SampleJob> = {}): SampleJob {
  return {
    adapter: null,
    prompt,
    numSamples: 1,
    maxTokens: 6,
    temperature: 0,
    topK: -1,
    topP: 1,
    seed: 0n,
    stopTokens: [],
    stopStrings: [],
    promptLogprobs: false,
    topkPromptLogprobs: 0,
    ...over,
  }
}

/** Forward-only log-probabilities of `items` (accumulates nothing). */
export async function forwardLogprobs(e: TrainingEngine, items: TrainItem[]): Promise<Float32Array[]> {
  const out = await e.forwardBackward(items.map((i) => ({ ...i, forwardOnly: true })))
  return out.map((r) => r.logprobs)
}

/** Stages a PEFT directory the way core does (the engine's hook, else file: URLs) and loads it. */
export async function loadPeft(s: SamplingEngine, id: AdapterId, dir: string): Promise<AdapterRef> {
  const uri = await (s.staging ?? fileStaging).stage(id, dir)
  const ref: AdapterRef = { kind: 'peft', id, uri }
  await s.loadAdapter(ref)
  return ref
}

export async function unloadPeft(s: SamplingEngine, ref: AdapterRef): Promise<void> {
  await s.unloadAdapter(ref)
  if (ref.kind === 'peft') await (s.staging ?? fileStaging).release(ref.id, ref.uri)
}

/** |actual - want| <= tol * max(1, |want|), element by element. */
export function assertClose(
  actual: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, want.length, `${what}: ${actual.length} values, expected ${want.length}`)
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(actual[i]! - want[i]!)
    assert.ok(
      d <= tol * Math.max(1, Math.abs(want[i]!)),
      `${what}[${i}]: ${actual[i]} vs ${want[i]} (|d| ${d})`,
    )
  }
}

/** Log-probabilities: finite and at most 0 (with fp32 slack). */
export function assertLogprobs(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    assert.ok(Number.isFinite(v) && v <= 1e-5, `${what}[${i}] = ${v} is not a log-probability`)
  }
}

/**
 * `work` rejects with a TuftError; with `clientError`, one whose status is 4xx (the caller's fault, so the
 * server answers 400/404 instead of 500 and never retries it).
 */
export async function rejectsCoded(work: Promise<unknown>, what: string, clientError = true): Promise<void> {
  let settled = false
  try {
    await work
    settled = true
  } catch (err) {
    assert.ok(isTuftError(err), `${what}: rejected with an uncoded error (use tuftError): ${String(err)}`)
    if (clientError) {
      assert.ok(
        err.statusCode >= 400 && err.statusCode < 500,
        `${what}: rejected with ${err.code} (${err.statusCode}), expected a 4xx code such as TUFT_BAD_REQUEST`,
      )
    }
  }
  assert.ok(!settled, `${what}: accepted, expected a rejection`)
}
