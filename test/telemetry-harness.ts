// Test harness for the telemetry suites: fake engines and a tiny Fastify app that behaves like the
// server's services (futures announced on the EventBus, two users' training fused into one engine
// call, sampling, usage events), so spans, metrics, logs and usage can be checked end to end.

import { Writable } from 'node:stream'
import { Value } from '@sinclair/typebox/value'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { type TelemetryConfig, type TuftConfig, TuftConfigSchema } from '../config/schema.js'
import type {
  EngineInfo,
  RequestTrace,
  SampleJob,
  SampleResult,
  SamplingEngine,
  TrainItem,
  TrainItemResult,
  TrainingEngine,
} from '../core/engine.js'
import { EventBus } from '../core/events.js'
import authPlugin from '../plugins/auth.js'
import configPlugin from '../plugins/config.js'
import errorHandlerPlugin from '../plugins/error-handler.js'
import { instrumentSamplingEngine, instrumentTrainingEngine } from '../plugins/telemetry/engines.js'
import { traceContextOf } from '../plugins/telemetry/http.js'
import telemetryPlugin from '../plugins/telemetry/index.js'
import { buildLoggerOptions } from '../plugins/telemetry/logging.js'
import type { Telemetry } from '../plugins/telemetry/sdk.js'
import type { UsageMeter } from '../plugins/telemetry/usage.js'
import usagePlugin from '../plugins/usage.js'

export const MODEL = 'tiny/bigram'
export const API_KEYS: Record<string, string> = { 'tml-alice-secret': 'alice', 'tml-bob-secret': 'bob' }

const INFO: EngineInfo = { device: 'cpu', vocabSize: 16, maxContext: 64, maxLoraRank: 8, arch: 'fake' }

export function telemetryConfig(overrides: Partial<TelemetryConfig> = {}): TelemetryConfig {
  return {
    enabled: true,
    service_name: 'tuft-test',
    otlp_protocol: 'http/protobuf',
    resource_attributes: { 'deployment.environment': 'test' },
    prometheus: { enabled: false, path: '/metrics' },
    operators: ['alice'],
    export_request_logs: false,
    trace_sample_ratio: 1,
    ...overrides,
  }
}

/** A training engine that answers at once: one logprob per token, loss = tokens. */
export class FakeTraining implements TrainingEngine {
  readonly info = INFO
  calls: { items: number; requests: number }[] = []
  async createAdapter(): Promise<void> {}
  async dropAdapter(): Promise<void> {}
  async forwardBackward(items: TrainItem[], o?: { requests: RequestTrace[] }): Promise<TrainItemResult[]> {
    this.calls.push({ items: items.length, requests: o?.requests.length ?? 0 })
    await new Promise((r) => setTimeout(r, 5))
    return items.map((i) => ({ logprobs: new Float32Array(i.tokens.length), loss: i.tokens.length }))
  }
  async optimStep() {
    return { gradNorm: 1, step: 1 }
  }
  async saveState() {
    return { files: [{ name: 'adapter_model.safetensors', bytes: 4096 }] }
  }
  async loadState(): Promise<void> {}
  async exportAdapter() {
    return { files: [{ name: 'adapter_model.safetensors', bytes: 4096 }] }
  }
  async snapshotAdapter(): Promise<void> {}
  async health() {
    return { ok: true }
  }
  async close(): Promise<void> {}
}

/** A sampling engine that generates `maxTokens` tokens per sample. */
export class FakeSampling implements SamplingEngine {
  readonly info = INFO
  async loadAdapter(): Promise<void> {}
  async unloadAdapter(): Promise<void> {}
  async sample(job: SampleJob): Promise<SampleResult> {
    const sequences = Array.from({ length: job.numSamples }, () => ({
      tokens: new Int32Array(job.maxTokens).fill(1),
      logprobs: new Float32Array(job.maxTokens),
      stopReason: 'length' as const,
    }))
    return { sequences }
  }
  async health() {
    return { ok: true }
  }
  async close(): Promise<void> {}
}

/** Collects log lines (pino JSON) written by the app. */
export class LineCapture extends Writable {
  readonly lines: Record<string, unknown>[] = []
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line.trim() !== '') this.lines.push(JSON.parse(line))
    done()
  }
}

export interface FlowApp {
  app: FastifyInstance
  events: EventBus
  training: FakeTraining
  logs: LineCapture
  /** Resolves once every fused training call started so far has finished. */
  idle(): Promise<void>
}

/** A full server config around a telemetry section; dev mode leaves authorized_users empty. */
export function serverConfig(telemetry: TelemetryConfig, devMode = false): TuftConfig {
  return Value.Default(TuftConfigSchema, {
    log_level: 'info',
    authorized_users: devMode ? {} : API_KEYS,
    telemetry: structuredClone(telemetry),
  }) as TuftConfig
}

/**
 * The app: POST /train queues a forward_backward future and fuses every `batchSize` of them into one
 * engine call (as the scheduler does); POST /sample runs one sample future.
 */
export async function buildFlowApp(opts: {
  config: TelemetryConfig
  telemetry?: Telemetry | null
  meter?: UsageMeter
  batchSize?: number
  devMode?: boolean
}): Promise<FlowApp> {
  const config = serverConfig(opts.config, opts.devMode)
  const logs = new LineCapture()
  const app = Fastify({ logger: buildLoggerOptions(config, { stdout: logs }) })
  const events = new EventBus()
  // The server's own plugins in the server's order: config, errors, telemetry, auth, then usage.
  await app.register(configPlugin, { config, configDir: process.cwd(), events })
  await app.register(errorHandlerPlugin)
  await app.register(telemetryPlugin, opts.telemetry === undefined ? {} : { telemetry: opts.telemetry })
  await app.register(authPlugin)
  await app.register(usagePlugin, opts.meter === undefined ? {} : { meter: opts.meter })
  const fake = new FakeTraining()
  const training = instrumentTrainingEngine(fake, app.telemetry, MODEL)
  const sampling = instrumentSamplingEngine(new FakeSampling(), app.telemetry, MODEL)
  const batchSize = opts.batchSize ?? 2
  let nextId = 0
  const pending: { trace: RequestTrace; tokens: number; queuedAt: number }[] = []
  const running: Promise<void>[] = []

  const requestTrace = (request: FastifyRequest, extra: Partial<RequestTrace>): RequestTrace => {
    const userId = request.userId
    if (userId === null) throw new Error('the auth plugin let an anonymous request through')
    const sessionId = String(request.headers['x-session'] ?? 's-1')
    // As the Tinker routes do: the request's trace context travels with the work it causes.
    const otelContext = traceContextOf(request)
    return { requestId: `req-${++nextId}`, userId, sessionId, otelContext, ...extra }
  }

  const flush = async (): Promise<void> => {
    const batch = pending.splice(0)
    for (const p of batch) {
      events.emit('future.running', {
        trace: p.trace,
        kind: 'forward_backward',
        modelName: MODEL,
        waitedMs: Date.now() - p.queuedAt,
      })
    }
    const items: TrainItem[] = batch.map((p) => ({
      adapterId: p.trace.trainingRunId ?? 'a',
      tokens: new Int32Array(p.tokens),
      targets: new Int32Array(p.tokens),
      k: 1,
      lossFn: 'cross_entropy',
      lossConfig: {},
      forwardOnly: false,
    }))
    await training.forwardBackward(items, { requests: batch.map((p) => p.trace) })
    events.emit('queue.depth', { modelName: MODEL, kind: 'training', depth: pending.length })
    for (const p of batch) {
      events.emit('usage', {
        userId: p.trace.userId,
        modelName: MODEL,
        kind: 'training_tokens',
        amount: p.tokens,
        ...(p.trace.sessionId === undefined ? {} : { sessionId: p.trace.sessionId }),
      })
      events.emit('future.done', {
        trace: p.trace,
        kind: 'forward_backward',
        modelName: MODEL,
        ok: true,
        totalMs: 7,
      })
    }
  }

  app.post<{ Body: { tokens: number } }>('/api/v1/train', async (request) => {
    const trace = requestTrace(request, { trainingRunId: `${request.headers['x-session'] ?? 's-1'}:train:0` })
    events.emit('future.queued', { trace, kind: 'forward_backward', modelName: MODEL })
    request.log.info({ request_id: trace.requestId }, 'training future queued')
    pending.push({ trace, tokens: request.body.tokens, queuedAt: Date.now() })
    events.emit('queue.depth', { modelName: MODEL, kind: 'training', depth: pending.length })
    if (pending.length >= batchSize) running.push(flush())
    return { request_id: trace.requestId }
  })

  app.post<{ Body: { prompt: number; max_tokens: number } }>('/api/v1/sample', async (request) => {
    const trace = requestTrace(request, { samplingSessionId: 'sampler-1' })
    events.emit('future.queued', { trace, kind: 'sample', modelName: MODEL })
    events.emit('future.running', { trace, kind: 'sample', modelName: MODEL, waitedMs: 1 })
    const job: SampleJob = {
      adapter: null,
      prompt: new Int32Array(request.body.prompt),
      numSamples: 1,
      maxTokens: request.body.max_tokens,
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 0n,
      stopTokens: [],
      stopStrings: [],
      promptLogprobs: false,
      topkPromptLogprobs: 0,
    }
    const result = await sampling.sample(job, { requests: [trace] })
    request.log.info({ request_id: trace.requestId }, 'sampled')
    const base = { userId: trace.userId, modelName: MODEL, sessionId: trace.sessionId ?? 's-1' }
    events.emit('usage', { ...base, kind: 'prefill_tokens', amount: job.prompt.length })
    events.emit('usage', { ...base, kind: 'sampled_tokens', amount: result.sequences[0]?.tokens.length ?? 0 })
    events.emit('future.done', { trace, kind: 'sample', modelName: MODEL, ok: true, totalMs: 3 })
    return { request_id: trace.requestId }
  })

  return {
    app,
    events,
    training: fake,
    logs,
    idle: async () => {
      await Promise.all(running)
    },
  }
}

/** Alice and Bob train (fused into one engine call), then Alice samples. */
export async function runFlow(flow: FlowApp): Promise<void> {
  const train = (key: string, session: string, tokens: number) =>
    flow.app.inject({
      method: 'POST',
      url: '/api/v1/train',
      headers: { 'x-api-key': key, 'x-session': session },
      payload: { tokens },
    })
  const [a, b] = await Promise.all([
    train('tml-alice-secret', 's-alice', 12),
    train('tml-bob-secret', 's-bob', 5),
  ])
  if (a.statusCode !== 200 || b.statusCode !== 200) throw new Error(`train failed: ${a.body} ${b.body}`)
  await flow.idle()
  const s = await flow.app.inject({
    method: 'POST',
    url: '/api/v1/sample',
    headers: { 'x-api-key': 'tml-alice-secret', 'x-session': 's-alice' },
    payload: { prompt: 4, max_tokens: 3 },
  })
  if (s.statusCode !== 200) throw new Error(`sample failed: ${s.body}`)
}
