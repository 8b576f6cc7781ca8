// Wrappers that add telemetry to any TrainingEngine / SamplingEngine from the outside (engines stay
// unaware of it): one span and one duration sample per engine call, and busy-time accounting.
// A call serving one request is a child of that request's future span; a fused call serving several
// starts its own trace and links to each of them.

import {
  type Attributes,
  type Context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import type {
  AdamParams,
  AdapterId,
  AdapterRef,
  EngineHealth,
  LoraSpec,
  Manifest,
  MemoryEstimate,
  RequestTrace,
  SampleJob,
  SamplingEngine,
  StepOptions,
  TrainItem,
  TrainingEngine,
} from '../../core/engine.js'
import { ATTR } from './attributes.js'
import type { BusyTracker } from './busy.js'
import type { EngineRole } from './instruments.js'
import type { Telemetry } from './sdk.js'
import { traceAttributes } from './trace-context.js'

/** Returns the engine itself when telemetry is off, so the hot path pays nothing. */
export function instrumentTrainingEngine(
  engine: TrainingEngine,
  telemetry: Telemetry | null,
  modelName: string,
): TrainingEngine {
  return telemetry === null
    ? engine
    : new InstrumentedTrainingEngine(engine, new Recorder(telemetry, modelName, 'training'))
}

export function instrumentSamplingEngine(
  engine: SamplingEngine,
  telemetry: Telemetry | null,
  modelName: string,
): SamplingEngine {
  return telemetry === null
    ? engine
    : new InstrumentedSamplingEngine(engine, new Recorder(telemetry, modelName, 'sampling'))
}

/** Runs one engine call inside its span and records its duration and busy time. */
class Recorder {
  readonly #telemetry: Telemetry
  readonly #busy: BusyTracker
  readonly #modelName: string
  readonly #role: EngineRole

  constructor(telemetry: Telemetry, modelName: string, role: EngineRole) {
    this.#telemetry = telemetry
    this.#modelName = modelName
    this.#role = role
    this.#busy = telemetry.instruments.busyTracker(modelName, role)
  }

  async run<T>(
    op: string,
    requests: readonly RequestTrace[] | undefined,
    attributes: Attributes,
    call: () => Promise<T>,
    describe?: (result: T) => Attributes,
  ): Promise<T> {
    const span = this.#startSpan(op, requests ?? [], attributes)
    const started = performance.now()
    this.#busy.begin()
    let outcome = 'error'
    try {
      const result = await call()
      outcome = 'ok'
      if (span !== null && describe !== undefined) span.setAttributes(describe(result))
      return result
    } catch (err) {
      if (span !== null) {
        span.recordException(err instanceof Error ? err : String(err))
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: err instanceof Error ? err.message : String(err),
        })
      }
      throw err
    } finally {
      this.#busy.end()
      this.#telemetry.instruments.engineDuration.record((performance.now() - started) / 1000, {
        [ATTR.model]: this.#modelName,
        [ATTR.engine]: this.#role,
        [ATTR.engineOp]: op,
        [ATTR.outcome]: outcome,
      })
      span?.end()
    }
  }

  #startSpan(op: string, requests: readonly RequestTrace[], extra: Attributes): Span | null {
    const tracer = this.#telemetry.tracer
    if (tracer === null) return null
    const futures = this.#telemetry.futures
    const attributes: Attributes = {
      [ATTR.model]: this.#modelName,
      [ATTR.engine]: this.#role,
      [ATTR.engineOp]: op,
      'request.count': requests.length,
      ...extra,
    }
    let parent: Context
    let links: Link[] | undefined
    const only = requests.length === 1 ? requests[0] : undefined
    if (only !== undefined) {
      parent = futures.contextOf(only) ?? ROOT_CONTEXT
      Object.assign(attributes, traceAttributes(only))
    } else if (requests.length > 1) {
      // A fused call belongs to no single request: its own trace, linked to every request it serves.
      parent = ROOT_CONTEXT
      links = []
      for (const r of requests) {
        const linked = futures.contextOf(r)
        const spanContext = linked === undefined ? undefined : trace.getSpanContext(linked)
        if (spanContext !== undefined) links.push({ context: spanContext, attributes: traceAttributes(r) })
      }
      attributes[ATTR.userId] = [...new Set(requests.map((r) => r.userId))]
    } else {
      parent = ROOT_CONTEXT
    }
    return tracer.startSpan(`engine ${op}`, { attributes, links }, parent)
  }
}

function manifestBytes(m: Manifest): Attributes {
  let bytes = 0
  for (const f of m.files) bytes += f.bytes
  return { 'checkpoint.bytes': bytes, 'checkpoint.files': m.files.length }
}

class InstrumentedTrainingEngine implements TrainingEngine {
  readonly #engine: TrainingEngine
  readonly #rec: Recorder
  /** Present exactly when the wrapped engine has it (core checks it against the declaration). */
  readonly snapshotAdapter?: (id: AdapterId, snapshotId: AdapterId, o?: StepOptions) => Promise<void>
  /** Present exactly when the wrapped engine has it (core falls back to its own estimate). */
  readonly estimateMemory?: (lora: LoraSpec) => MemoryEstimate

  constructor(engine: TrainingEngine, recorder: Recorder) {
    this.#engine = engine
    this.#rec = recorder
    const estimate = engine.estimateMemory?.bind(engine)
    if (estimate) this.estimateMemory = estimate
    const snapshot = engine.snapshotAdapter?.bind(engine)
    if (snapshot) {
      this.snapshotAdapter = (id, snapshotId, o) =>
        this.#rec.run('snapshot_adapter', o?.requests, { [ATTR.adapterId]: id }, () =>
          snapshot(id, snapshotId, o),
        )
    }
  }

  get info() {
    return this.#engine.info
  }

  createAdapter(id: AdapterId, lora: LoraSpec): Promise<void> {
    return this.#rec.run('create_adapter', undefined, { [ATTR.adapterId]: id, 'lora.rank': lora.rank }, () =>
      this.#engine.createAdapter(id, lora),
    )
  }

  dropAdapter(id: AdapterId): Promise<void> {
    return this.#rec.run('drop_adapter', undefined, { [ATTR.adapterId]: id }, () =>
      this.#engine.dropAdapter(id),
    )
  }

  forwardBackward(items: TrainItem[], o?: StepOptions) {
    let tokens = 0
    const adapters = new Set<AdapterId>()
    for (const item of items) {
      tokens += item.tokens.length
      adapters.add(item.adapterId)
    }
    const forwardOnly = items.length > 0 && items.every((i) => i.forwardOnly)
    return this.#rec.run(
      forwardOnly ? 'forward' : 'forward_backward',
      o?.requests,
      { 'tokens.training': tokens, 'batch.items': items.length, 'batch.adapters': adapters.size },
      () => this.#engine.forwardBackward(items, o),
    )
  }

  optimStep(id: AdapterId, adam: AdamParams, o?: StepOptions) {
    return this.#rec.run(
      'optim_step',
      o?.requests,
      { [ATTR.adapterId]: id, 'adam.learning_rate': adam.learningRate },
      () => this.#engine.optimStep(id, adam, o),
      (r) => ({ 'optim.step': r.step, 'optim.grad_norm': r.gradNorm }),
    )
  }

  saveState(id: AdapterId, dir: string, opts: { optimizer: boolean }, o?: StepOptions) {
    return this.#rec.run(
      'save_state',
      o?.requests,
      { [ATTR.adapterId]: id, 'checkpoint.optimizer': opts.optimizer },
      () => this.#engine.saveState(id, dir, opts, o),
      manifestBytes,
    )
  }

  loadState(id: AdapterId, dir: string, opts: { optimizer: boolean }, o?: StepOptions) {
    return this.#rec.run(
      'load_state',
      o?.requests,
      { [ATTR.adapterId]: id, 'checkpoint.optimizer': opts.optimizer },
      () => this.#engine.loadState(id, dir, opts, o),
    )
  }

  exportAdapter(id: AdapterId, dir: string, o?: StepOptions) {
    return this.#rec.run(
      'export_adapter',
      o?.requests,
      { [ATTR.adapterId]: id },
      () => this.#engine.exportAdapter(id, dir, o),
      manifestBytes,
    )
  }

  /** Polled by readiness probes: forwarded without a span. */
  health(): Promise<EngineHealth> {
    return this.#engine.health()
  }

  close(): Promise<void> {
    return this.#engine.close()
  }
}

class InstrumentedSamplingEngine implements SamplingEngine {
  readonly #engine: SamplingEngine
  readonly #rec: Recorder

  constructor(engine: SamplingEngine, recorder: Recorder) {
    this.#engine = engine
    this.#rec = recorder
  }

  get info() {
    return this.#engine.info
  }

  get staging() {
    return this.#engine.staging
  }

  loadAdapter(ref: AdapterRef): Promise<void> {
    return this.#rec.run(
      'load_adapter',
      undefined,
      { [ATTR.adapterId]: ref.id, 'adapter.kind': ref.kind },
      () => this.#engine.loadAdapter(ref),
    )
  }

  unloadAdapter(ref: AdapterRef): Promise<void> {
    return this.#rec.run('unload_adapter', undefined, { [ATTR.adapterId]: ref.id }, () =>
      this.#engine.unloadAdapter(ref),
    )
  }

  sample(job: SampleJob, o?: StepOptions) {
    const attributes: Attributes = {
      'tokens.prompt': job.prompt.length,
      'sample.num_samples': job.numSamples,
      'sample.max_tokens': job.maxTokens,
    }
    if (job.adapter !== null) attributes[ATTR.adapterId] = job.adapter.id
    return this.#rec.run(
      'sample',
      o?.requests,
      attributes,
      () => this.#engine.sample(job, o),
      (r) => {
        let sampled = 0
        for (const s of r.sequences) sampled += s.tokens.length
        return { 'tokens.sampled': sampled }
      },
    )
  }

  health(): Promise<EngineHealth> {
    return this.#engine.health()
  }

  close(): Promise<void> {
    return this.#engine.close()
  }
}
