// A deterministic engine double for tests: a real tiny learner. The "base model" is a frozen bigram
// logit table W[prev][next]; each adapter adds a trainable delta table D (zero at creation, so a new
// adapter behaves like the base model). The five Tinker losses have exact gradients, optim_step is
// AdamW with clipping, checkpoints are safetensors + adapter_config.json, sampling is seeded. Bad input
// is rejected with coded errors, as the engine contract asks; it passes the engine conformance suite.

import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import {
  type AdamParams,
  type AdapterId,
  type AdapterRef,
  type EngineCapabilities,
  type EngineContext,
  type EngineHealth,
  type EngineInfo,
  type EngineProvider,
  LOSS_FNS,
  type LoraSpec,
  type Manifest,
  type MemoryEstimate,
  type OptimResult,
  type SampledSequence,
  type SampleJob,
  type SampleResult,
  type SamplingEngine,
  type TrainItem,
  type TrainItemResult,
  type TrainingEngine,
} from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import { localDir } from '../../core/staging.js'
import { readF32Safetensors, writeF32Safetensors } from './safetensors.js'

export const DoubleOptions = Type.Object(
  {
    vocab_size: Type.Integer({ minimum: 2, maximum: 4096, default: 64 }),
    max_context: Type.Integer({ minimum: 2, default: 512 }),
    seed: Type.Integer({ default: 7 }),
    /** Any fused call containing this token fails, as a broken engine would (isolation tests). */
    poison_token: Type.Optional(Type.Integer({ minimum: 0 })),
    /** Milliseconds each training and sampling call takes, so tests can queue work behind it. */
    step_delay_ms: Type.Integer({ minimum: 0, default: 0 }),
    /** Milliseconds engine creation takes, like loading weights. */
    load_delay_ms: Type.Integer({ minimum: 0, default: 0 }),
  },
  { additionalProperties: false },
)
type Options = Static<typeof DoubleOptions>

const DELTA = 'base_model.model.bigram.lora_B.weight'

function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** What a training engine and a sampling engine of the same model share: base weights and snapshots. */
interface SharedModel {
  v: number
  base: Float32Array
  snapshots: Map<AdapterId, Float32Array>
}

interface Adapter {
  lora: LoraSpec
  delta: Float32Array
  grad: Float32Array
  m: Float32Array
  s: Float32Array
  step: number
}

export interface DoubleCall {
  adapters: AdapterId[]
  items: number
}

/** Log-softmax of row `prev` of (base + delta), into `out`. */
function logSoftmaxRow(m: SharedModel, delta: Float32Array | null, prev: number, out: Float64Array): void {
  const v = m.v
  let max = -Infinity
  for (let j = 0; j < v; j++) {
    out[j] = m.base[prev * v + j]! + (delta ? delta[prev * v + j]! : 0)
    if (out[j]! > max) max = out[j]!
  }
  let sum = 0
  for (let j = 0; j < v; j++) sum += Math.exp(out[j]! - max)
  const lse = max + Math.log(sum)
  for (let j = 0; j < v; j++) out[j] = out[j]! - lse
}

/** d loss / d logprob for one position, and that position's loss (spec §6). */
function lossAt(item: TrainItem, i: number, k: number, lp: number): { loss: number; dl: number } {
  const w = item.weights?.[i * item.k + k] ?? 0
  if (item.lossFn === 'cross_entropy') return { loss: -w * lp, dl: -w }
  const q = item.logprobs![i]!
  const a = item.advantages![i]!
  const r = Math.exp(lp - q)
  const cfg = item.lossConfig
  switch (item.lossFn) {
    case 'importance_sampling':
      return { loss: -r * a, dl: -r * a }
    case 'ppo': {
      const lo = item.clipLow?.[i] ?? cfg.clip_low_threshold ?? 0.8
      const hi = item.clipHigh?.[i] ?? cfg.clip_high_threshold ?? 1.2
      const clipped = Math.min(Math.max(r, lo), hi)
      // The gradient flows through whichever term is the minimum; a clipped ratio is constant.
      return { loss: -Math.min(r * a, clipped * a), dl: r * a <= clipped * a ? -r * a : 0 }
    }
    case 'cispo': {
      const lo = item.clipLow?.[i] ?? cfg.clip_low_threshold ?? 0
      const hi = item.clipHigh?.[i] ?? cfg.clip_high_threshold ?? 4
      const c = Math.min(Math.max(r, lo), hi)
      return { loss: -c * lp * a, dl: -c * a }
    }
    case 'dro': {
      const beta = cfg.beta ?? 0.01
      return { loss: -(lp * a - 0.5 * beta * (lp - q) ** 2), dl: -a + beta * (lp - q) }
    }
  }
  throw bad(`unknown loss ${item.lossFn}`)
}

function bad(message: string): Error {
  return tuftError('TUFT_BAD_REQUEST', message)
}

function checkIds(ids: Int32Array, v: number, what: string): void {
  for (const t of ids)
    if (!(t >= 0 && t < v)) throw bad(`${what}: token ${t} outside the vocabulary [0, ${v})`)
}

function checkFloats(values: Float32Array | undefined, length: number, what: string): void {
  if (values === undefined) throw bad(`${what} is required`)
  if (values.length !== length) throw bad(`${what} has ${values.length} values, expected ${length}`)
  for (const x of values) if (!Number.isFinite(x)) throw bad(`${what} holds a non-finite value`)
}

/** Everything forwardBackward needs of an item, checked before any of the call's work starts. */
function checkItem(item: TrainItem, i: number, info: EngineInfo): void {
  const n = item.tokens.length
  if (n === 0) throw bad(`item ${i}: no tokens`)
  if (n > info.maxContext) throw bad(`item ${i}: ${n} tokens exceed the context of ${info.maxContext}`)
  if (!Number.isInteger(item.k) || item.k < 1) throw bad(`item ${i}: k must be a positive integer`)
  if (!(LOSS_FNS as readonly string[]).includes(item.lossFn))
    throw bad(`item ${i}: unknown loss ${item.lossFn}`)
  if (item.targets.length !== n * item.k) throw bad(`item ${i}: expected ${n} x ${item.k} targets`)
  checkIds(item.tokens, info.vocabSize, `item ${i} tokens`)
  checkIds(item.targets, info.vocabSize, `item ${i} targets`)
  if (item.lossFn === 'cross_entropy') {
    if (item.weights !== undefined) checkFloats(item.weights, n * item.k, `item ${i} weights`)
    return
  }
  if (item.k !== 1) throw bad(`item ${i}: ${item.lossFn} takes one target per position`)
  checkFloats(item.logprobs, n, `item ${i} logprobs`)
  checkFloats(item.advantages, n, `item ${i} advantages`)
}

function closed(): Error {
  return tuftError('TUFT_UNAVAILABLE', 'the engine double was closed')
}

export class DoubleTraining implements TrainingEngine {
  readonly info: EngineInfo
  private readonly adapters = new Map<AdapterId, Adapter>()
  /** The LoRA config of each snapshot taken here (a snapshot can be exported as PEFT). */
  private readonly snapshotLora = new Map<AdapterId, LoraSpec>()
  private closed = false
  /** Present only when the provider declares shared-memory snapshots. */
  readonly snapshotAdapter?: (id: AdapterId, snapshotId: AdapterId) => Promise<void>

  constructor(
    private readonly model: SharedModel,
    private readonly opts: Options,
    maxLoraRank: number,
    readonly calls: DoubleCall[],
    snapshots: EngineCapabilities['snapshots'],
  ) {
    if (snapshots === 'shared-memory')
      this.snapshotAdapter = (id, snapshotId) => this.snapshot(id, snapshotId)
    this.info = {
      device: 'cpu-double',
      vocabSize: model.v,
      maxContext: opts.max_context,
      maxLoraRank,
      arch: 'bigram',
    }
  }

  /** Its own layout: four fp32 V×V tables per adapter (delta, gradient, two moments) and the base table. */
  estimateMemory(): MemoryEstimate {
    const table = 4 * this.model.v * this.model.v
    return { adapterBytes: 4 * table, sharedBytes: table }
  }

  async createAdapter(id: AdapterId, lora: LoraSpec): Promise<void> {
    if (this.closed) throw closed()
    if (!Number.isInteger(lora.rank) || lora.rank < 1 || lora.rank > this.info.maxLoraRank)
      throw bad(`rank ${lora.rank} outside [1, ${this.info.maxLoraRank}]`)
    if (this.adapters.has(id)) throw bad(`adapter ${id} already exists`)
    const n = this.model.v * this.model.v
    this.adapters.set(id, {
      lora,
      delta: new Float32Array(n),
      grad: new Float32Array(n),
      m: new Float32Array(n),
      s: new Float32Array(n),
      step: 0,
    })
  }

  async dropAdapter(id: AdapterId): Promise<void> {
    this.adapters.delete(id)
  }

  async forwardBackward(items: TrainItem[]): Promise<TrainItemResult[]> {
    if (this.opts.step_delay_ms > 0) await new Promise((r) => setTimeout(r, this.opts.step_delay_ms))
    if (this.closed) throw closed()
    this.calls.push({ adapters: items.map((i) => i.adapterId), items: items.length })
    const v = this.model.v
    for (const [i, item] of items.entries()) {
      if (this.opts.poison_token !== undefined && item.tokens.includes(this.opts.poison_token)) {
        throw new Error(`engine double: poisoned input in a call of ${items.length} items`)
      }
      this.require(item.adapterId)
      checkItem(item, i, this.info)
    }
    // Compute everything first so a failing call leaves no adapter half-updated.
    const row = new Float64Array(v)
    const updates: { adapter: Adapter; at: number; j: number; g: number }[] = []
    const results = items.map((item) => {
      const adapter = this.adapters.get(item.adapterId)!
      const n = item.tokens.length
      const logprobs = new Float32Array(n * item.k)
      let loss = 0
      for (let i = 0; i < n; i++) {
        const prev = item.tokens[i]!
        logSoftmaxRow(this.model, adapter.delta, prev, row)
        for (let k = 0; k < item.k; k++) {
          const target = item.targets[i * item.k + k]!
          const lp = row[target]!
          logprobs[i * item.k + k] = lp
          const { loss: l, dl } = lossAt(item, i, k, lp)
          loss += l
          if (item.forwardOnly || dl === 0) continue
          // d lp / d logit_j = [j == target] - p_j
          for (let j = 0; j < v; j++) {
            const g = dl * ((j === target ? 1 : 0) - Math.exp(row[j]!))
            updates.push({ adapter, at: prev * v + j, j, g })
          }
        }
      }
      return { logprobs, loss }
    })
    for (const u of updates) u.adapter.grad[u.at] = u.adapter.grad[u.at]! + u.g
    return results
  }

  async optimStep(id: AdapterId, adam: AdamParams): Promise<OptimResult> {
    const a = this.require(id)
    for (const [name, value] of Object.entries(adam))
      if (!Number.isFinite(value) || value < 0) throw bad(`adam ${name} must be a finite number >= 0`)
    let sq = 0
    for (const g of a.grad) sq += g * g
    const gradNorm = Math.sqrt(sq)
    const scale = adam.gradClipNorm > 0 && gradNorm > adam.gradClipNorm ? adam.gradClipNorm / gradNorm : 1
    a.step += 1
    const bc1 = 1 - adam.beta1 ** a.step
    const bc2 = 1 - adam.beta2 ** a.step
    for (let i = 0; i < a.delta.length; i++) {
      const g = a.grad[i]! * scale
      a.delta[i] = a.delta[i]! * (1 - adam.learningRate * adam.weightDecay)
      a.m[i] = adam.beta1 * a.m[i]! + (1 - adam.beta1) * g
      a.s[i] = adam.beta2 * a.s[i]! + (1 - adam.beta2) * g * g
      a.delta[i] = a.delta[i]! - (adam.learningRate * (a.m[i]! / bc1)) / (Math.sqrt(a.s[i]! / bc2) + adam.eps)
    }
    a.grad.fill(0)
    return { gradNorm, step: a.step }
  }

  async saveState(id: AdapterId, dir: string, opts: { optimizer: boolean }): Promise<Manifest> {
    const a = this.require(id)
    const manifest = this.writePeft(a, dir)
    if (opts.optimizer) {
      const shape = [this.model.v, this.model.v]
      const bytes = writeF32Safetensors(
        join(dir, 'optimizer.safetensors'),
        { exp_avg: { shape, data: a.m }, exp_avg_sq: { shape, data: a.s } },
        { step: String(a.step) },
      )
      manifest.files.push({ name: 'optimizer.safetensors', bytes })
    }
    return manifest
  }

  async loadState(id: AdapterId, dir: string, opts: { optimizer: boolean }): Promise<void> {
    const a = this.require(id)
    const delta = readAdapter(dir, a.delta.length)
    let m: Float32Array = new Float32Array(a.m.length)
    let s: Float32Array = new Float32Array(a.s.length)
    let step = 0
    if (opts.optimizer) {
      const path = join(dir, 'optimizer.safetensors')
      if (!existsSync(path)) throw bad(`${dir} holds no optimizer state`)
      const opt = readF32Safetensors(path)
      m = opt.tensors.exp_avg!.data
      s = opt.tensors.exp_avg_sq!.data
      step = Number(opt.metadata.step ?? 0)
    }
    a.delta.set(delta)
    a.m = m
    a.s = s
    a.step = step
    a.grad.fill(0)
  }

  /** A training adapter, or a snapshot taken here that sampling has not freed yet. */
  async exportAdapter(id: AdapterId, dir: string): Promise<Manifest> {
    const delta = this.adapters.get(id)?.delta ?? this.model.snapshots.get(id)
    const lora = this.adapters.get(id)?.lora ?? this.snapshotLora.get(id)
    if (this.closed) throw closed()
    if (!delta || !lora) throw tuftError('TUFT_NOT_FOUND', `unknown adapter ${id}`)
    return this.writePeft({ lora, delta }, dir)
  }

  private async snapshot(id: AdapterId, snapshotId: AdapterId): Promise<void> {
    const a = this.require(id)
    this.model.snapshots.set(snapshotId, new Float32Array(a.delta))
    this.snapshotLora.set(snapshotId, a.lora)
  }

  async health(): Promise<EngineHealth> {
    return this.closed ? { ok: false, message: 'closed' } : { ok: true }
  }

  async close(): Promise<void> {
    this.closed = true
    this.adapters.clear()
  }

  /** The accumulated gradient of an adapter's delta table (gradient checks in tests). */
  gradient(id: AdapterId): Float32Array {
    return new Float32Array(this.require(id).grad)
  }

  /** Adds h to one entry of an adapter's delta table (finite differences in tests). */
  perturb(id: AdapterId, index: number, h: number): void {
    const a = this.require(id)
    a.delta[index] = a.delta[index]! + h
  }

  private writePeft(a: Pick<Adapter, 'lora' | 'delta'>, dir: string): Manifest {
    mkdirSync(dir, { recursive: true })
    const v = this.model.v
    const bytes = writeF32Safetensors(join(dir, 'adapter_model.safetensors'), {
      [DELTA]: { shape: [v, v], data: a.delta },
    })
    const config = {
      peft_type: 'LORA',
      r: a.lora.rank,
      lora_alpha: a.lora.alpha,
      target_modules: ['bigram'],
      base_model_name_or_path: 'engine-double',
    }
    const configPath = join(dir, 'adapter_config.json')
    writeFileSync(configPath, JSON.stringify(config, null, 2))
    return {
      files: [
        { name: 'adapter_model.safetensors', bytes },
        { name: 'adapter_config.json', bytes: statSync(configPath).size },
      ],
    }
  }

  private require(id: AdapterId): Adapter {
    if (this.closed) throw closed()
    const a = this.adapters.get(id)
    if (!a) throw tuftError('TUFT_NOT_FOUND', `unknown adapter ${id}`)
    return a
  }
}

export class DoubleSampling implements SamplingEngine {
  readonly info: EngineInfo
  private readonly loaded = new Map<AdapterId, Float32Array>()
  private closed = false

  constructor(
    private readonly model: SharedModel,
    private readonly opts: Options,
    maxLoraRank: number,
  ) {
    this.info = {
      device: 'cpu-double',
      vocabSize: model.v,
      maxContext: opts.max_context,
      maxLoraRank,
      arch: 'bigram',
    }
  }

  async loadAdapter(ref: AdapterRef): Promise<void> {
    if (this.closed) throw closed()
    if (ref.kind === 'snapshot') {
      const snap = this.model.snapshots.get(ref.id)
      if (!snap) throw tuftError('TUFT_NOT_FOUND', `unknown snapshot ${ref.id}`)
      this.loaded.set(ref.id, snap)
      return
    }
    this.loaded.set(ref.id, readAdapter(localDir(ref.uri), this.model.v * this.model.v))
  }

  /** Frees the adapter; a snapshot is gone for good (as an engine frees its memory). */
  async unloadAdapter(ref: AdapterRef): Promise<void> {
    this.loaded.delete(ref.id)
    if (ref.kind === 'snapshot') this.model.snapshots.delete(ref.id)
  }

  /** Adapters loaded right now (tests check the bound). */
  residentAdapters(): number {
    return this.loaded.size
  }

  async sample(job: SampleJob): Promise<SampleResult> {
    if (this.opts.step_delay_ms > 0) await new Promise((r) => setTimeout(r, this.opts.step_delay_ms))
    if (this.closed) throw closed()
    const v = this.model.v
    const delta = job.adapter ? this.loaded.get(job.adapter.id) : null
    if (delta === undefined) throw tuftError('TUFT_NOT_FOUND', `adapter ${job.adapter?.id} is not loaded`)
    checkSampleJob(job, this.info)
    const row = new Float64Array(v)
    const sequences: SampledSequence[] = []
    for (let s = 0; s < job.numSamples; s++) {
      const rand = mulberry32(Number(job.seed % 4294967296n) + s * 7919)
      const tokens: number[] = []
      const logprobs: number[] = []
      let prev = job.prompt[job.prompt.length - 1] ?? 0
      let stopReason: 'stop' | 'length' = 'length'
      while (tokens.length < job.maxTokens && job.prompt.length + tokens.length < this.info.maxContext) {
        // Yield now and then, so that an abort can land while a long request runs.
        if (tokens.length % 256 === 0) await new Promise((r) => setImmediate(r))
        if (job.signal?.aborted) throw tuftError('TUFT_UNAVAILABLE', 'the sample request was cancelled')
        logSoftmaxRow(this.model, delta, prev, row)
        const next = this.pick(row, job, rand)
        tokens.push(next)
        logprobs.push(row[next]!)
        prev = next
        if (job.stopTokens.includes(next)) {
          stopReason = 'stop'
          break
        }
      }
      sequences.push({ tokens: Int32Array.from(tokens), logprobs: Float32Array.from(logprobs), stopReason })
    }
    const result: SampleResult = { sequences }
    if (job.promptLogprobs || job.topkPromptLogprobs > 0) {
      const p = job.prompt.length
      const k = job.topkPromptLogprobs
      const plp = new Float32Array(p).fill(Number.NaN)
      const ids = new Int32Array(p * k)
      const lps = new Float32Array(p * k).fill(-99999)
      for (let i = 1; i < p; i++) {
        logSoftmaxRow(this.model, delta, job.prompt[i - 1]!, row)
        plp[i] = row[job.prompt[i]!]!
        const best = [...row.keys()].sort((x, y) => row[y]! - row[x]!).slice(0, k)
        best.forEach((tok, c) => {
          ids[i * k + c] = tok
          lps[i * k + c] = row[tok]!
        })
      }
      if (job.promptLogprobs) result.promptLogprobs = plp
      if (k > 0) result.topkPromptLogprobs = { tokenIds: ids, logprobs: lps, k, promptLength: p }
    }
    return result
  }

  async health(): Promise<EngineHealth> {
    return this.closed ? { ok: false, message: 'closed' } : { ok: true }
  }

  async close(): Promise<void> {
    this.closed = true
    this.loaded.clear()
  }

  private pick(row: Float64Array, job: SampleJob, rand: () => number): number {
    const v = row.length
    if (job.temperature === 0) {
      let best = 0
      for (let j = 1; j < v; j++) if (row[j]! > row[best]!) best = j
      return best
    }
    let order = [...row.keys()].sort((x, y) => row[y]! - row[x]!)
    if (job.topK > 0) order = order.slice(0, job.topK)
    const weights = order.map((j) => Math.exp(row[j]! / job.temperature))
    const total = weights.reduce((a, b) => a + b, 0)
    let kept = order.length
    if (job.topP < 1) {
      let mass = 0
      kept = 0
      while (kept < order.length && mass < job.topP * total) mass += weights[kept++]!
    }
    const sum = weights.slice(0, kept).reduce((a, b) => a + b, 0)
    let u = rand() * sum
    for (let c = 0; c < kept; c++) {
      u -= weights[c]!
      if (u <= 0) return order[c]!
    }
    return order[kept - 1]!
  }
}

/** PEFT adapter weights in `dir`, which must fit a table of `size` entries. */
function readAdapter(dir: string, size: number): Float32Array {
  const file = join(dir, 'adapter_model.safetensors')
  if (!existsSync(file)) throw tuftError('TUFT_NOT_FOUND', `${dir} holds no adapter_model.safetensors`)
  const delta = readF32Safetensors(file).tensors[DELTA]
  if (!delta || delta.data.length !== size) throw bad(`${dir}: adapter does not fit this model`)
  return delta.data
}

function checkSampleJob(job: SampleJob, info: EngineInfo): void {
  if (job.prompt.length === 0) throw bad('empty prompt')
  checkIds(job.prompt, info.vocabSize, 'prompt')
  if (!Number.isInteger(job.numSamples) || job.numSamples < 1) throw bad('numSamples must be >= 1')
  if (!Number.isInteger(job.maxTokens) || job.maxTokens < 0) throw bad('maxTokens must be >= 0')
  if (!(job.temperature >= 0)) throw bad('temperature must be >= 0')
  if (!(job.topP > 0 && job.topP <= 1)) throw bad('topP must be in (0, 1]')
  if (!Number.isInteger(job.topkPromptLogprobs) || job.topkPromptLogprobs < 0)
    throw bad('topkPromptLogprobs must be >= 0')
  if (job.signal?.aborted) throw tuftError('TUFT_UNAVAILABLE', 'the sample request was cancelled')
}

/**
 * A fresh provider (own shared state and call log); `name` lets tests register several, `snapshots`
 * which snapshot path it declares (with 'peft-files' its training engines have no snapshotAdapter).
 */
export function createEngineDouble(
  name = 'double',
  snapshots: EngineCapabilities['snapshots'] = 'shared-memory',
): EngineProvider<typeof DoubleOptions> & { calls: DoubleCall[] } {
  const models = new Map<string, SharedModel>()
  const calls: DoubleCall[] = []
  const shared = (opts: Options, ctx: EngineContext): SharedModel => {
    const key = `${ctx.modelName}|${opts.vocab_size}|${opts.seed}`
    let m = models.get(key)
    if (!m) {
      const v = opts.vocab_size
      const rand = mulberry32(opts.seed)
      const base = new Float32Array(v * v)
      for (let i = 0; i < base.length; i++) base[i] = (rand() - 0.5) * 0.5
      m = { v, base, snapshots: new Map() }
      models.set(key, m)
    }
    return m
  }
  return {
    name,
    capabilities: {
      snapshots,
      sampleFromTrainingSnapshot: snapshots === 'shared-memory',
      losses: LOSS_FNS,
      // Its delta table does not depend on the rank, so any configured rank fits.
      maxLoraRank: 1024,
      // Not a transformer: it reads nothing from the model directory.
      architectures: [],
    },
    configSchema: DoubleOptions,
    calls,
    async createTraining(opts, ctx) {
      if (opts.load_delay_ms > 0) await new Promise((r) => setTimeout(r, opts.load_delay_ms))
      return new DoubleTraining(shared(opts, ctx), opts, ctx.maxLoraRank, calls, snapshots)
    },
    async createSampling(opts, ctx) {
      return new DoubleSampling(shared(opts, ctx), opts, ctx.maxLoraRank)
    },
  }
}
