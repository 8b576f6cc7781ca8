// Telemetry through in-memory exporters: a training + sampling flow yields request, future and engine
// spans with the right parent/child links and attributes, per-user metrics, and log lines (console and
// OTel) correlated by trace id; with telemetry off nothing is installed at all.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { InMemoryLogRecordExporter } from '@opentelemetry/sdk-logs'
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  type MetricData,
} from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { instrumentTrainingEngine } from '../plugins/telemetry/engines.js'
import { createTelemetry, type Telemetry } from '../plugins/telemetry/sdk.js'
import {
  buildFlowApp,
  FakeTraining,
  type FlowApp,
  MODEL,
  runFlow,
  telemetryConfig,
} from './telemetry-harness.js'

/** A sample request carrying a client's sampled traceparent (parent span 00f067aa0ba902b7). */
function sampleTraced(flow: FlowApp, traceId: string) {
  return flow.app.inject({
    method: 'POST',
    url: '/api/v1/sample',
    headers: { 'x-api-key': 'tml-alice-secret', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    payload: { prompt: 2, max_tokens: 1 },
  })
}

function metric(exporter: InMemoryMetricExporter, name: string): MetricData {
  const all =
    exporter
      .getMetrics()
      .at(-1)
      ?.scopeMetrics.flatMap((s) => s.metrics) ?? []
  const found = all.find((m) => m.descriptor.name === name)
  assert.ok(found, `metric ${name} exported (have: ${all.map((m) => m.descriptor.name).join(', ')})`)
  return found
}

function valueFor(m: MetricData, attrs: Record<string, string>): number {
  const point = m.dataPoints.find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))
  assert.ok(point, `${m.descriptor.name} has a point for ${JSON.stringify(attrs)}`)
  return point.value as number
}

describe('telemetry enabled (in-memory exporters)', () => {
  const spans = new InMemorySpanExporter()
  const logExporter = new InMemoryLogRecordExporter()
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  let telemetry: Telemetry
  let flow: FlowApp
  let finished: ReadableSpan[]

  before(async () => {
    const config = telemetryConfig()
    const created = await createTelemetry(config, {
      exporters: { spans, logs: logExporter, metrics },
      metricExportIntervalMs: 3_600_000,
    })
    assert.ok(created)
    telemetry = created
    flow = await buildFlowApp({ config, telemetry })
    await runFlow(flow)
    await telemetry.forceFlush()
    finished = spans.getFinishedSpans()
  })
  after(async () => {
    await flow.app.close()
  })

  const byName = (name: string) => finished.filter((s) => s.name === name)
  const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId

  test('each HTTP request has a SERVER span named by route with method, status and user, never the key', () => {
    const train = byName('POST /api/v1/train')
    assert.equal(train.length, 2)
    for (const s of train) {
      assert.equal(s.kind, SpanKind.SERVER)
      assert.equal(s.attributes['http.route'], '/api/v1/train')
      assert.equal(s.attributes['http.request.method'], 'POST')
      assert.equal(s.attributes['http.response.status_code'], 200)
    }
    assert.deepEqual(train.map((s) => s.attributes.user_id).sort(), ['alice', 'bob'])
    for (const s of finished) {
      for (const v of Object.values(s.attributes))
        assert.ok(!String(v).includes('secret'), `${s.name} leaks a key`)
    }
  })

  test('a future span is the child of its request span and carries session, run and user', () => {
    const futures = byName('future forward_backward')
    assert.equal(futures.length, 2)
    for (const f of futures) {
      const request = byName('POST /api/v1/train').find((s) => s.spanContext().spanId === parentOf(f))
      assert.ok(request, 'the future is parented by a request span')
      assert.equal(f.spanContext().traceId, request.spanContext().traceId)
      assert.equal(f.attributes.user_id, request.attributes.user_id)
      assert.equal(f.attributes.model, MODEL)
      assert.equal(f.attributes.training_run_id, `${f.attributes.session_id}:train:0`)
      assert.equal(f.status.code, SpanStatusCode.OK)
      assert.ok(
        f.events.some((e) => e.name === 'running'),
        'the running transition is recorded',
      )
    }
  })

  test('a fused engine call links to every future it serves', () => {
    const [engine, ...more] = byName('engine forward_backward')
    assert.ok(engine)
    assert.equal(more.length, 0, 'one fused call')
    assert.equal(engine.parentSpanContext, undefined, 'its own trace')
    assert.equal(engine.attributes['tokens.training'], 17)
    assert.equal(engine.attributes['batch.items'], 2)
    assert.deepEqual([...(engine.attributes.user_id as string[])].sort(), ['alice', 'bob'])
    const futureIds = byName('future forward_backward').map((f) => f.spanContext().spanId)
    assert.deepEqual(engine.links.map((l) => l.context.spanId).sort(), futureIds.sort())
    assert.deepEqual(engine.links.map((l) => l.attributes?.user_id).sort(), ['alice', 'bob'])
  })

  test('a single-request engine call is the child of its future: request → future → engine', () => {
    const [request] = byName('POST /api/v1/sample')
    const [future] = byName('future sample')
    const [engine] = byName('engine sample')
    assert.ok(request && future && engine)
    assert.equal(parentOf(future), request.spanContext().spanId)
    assert.equal(parentOf(engine), future.spanContext().spanId)
    assert.equal(engine.spanContext().traceId, request.spanContext().traceId)
    assert.equal(engine.attributes.sampling_session_id, 'sampler-1')
    assert.equal(engine.attributes.user_id, 'alice')
    assert.equal(engine.attributes['tokens.prompt'], 4)
    assert.equal(engine.attributes['tokens.sampled'], 3)
  })

  test('metrics carry per-user token counts and latency by route and status', () => {
    const training = metric(metrics, 'tuft.training.tokens')
    assert.equal(valueFor(training, { user_id: 'alice', model: MODEL }), 12)
    assert.equal(valueFor(training, { user_id: 'bob', model: MODEL }), 5)
    assert.equal(valueFor(metric(metrics, 'tuft.sampling.prefill_tokens'), { user_id: 'alice' }), 4)
    assert.equal(valueFor(metric(metrics, 'tuft.sampling.sampled_tokens'), { user_id: 'alice' }), 3)
    const http = metric(metrics, 'http.server.request.duration')
    assert.equal(http.dataPointType, DataPointType.HISTOGRAM)
    const trainPoint = http.dataPoints.find(
      (p) =>
        p.attributes['http.route'] === '/api/v1/train' && p.attributes['http.response.status_code'] === 200,
    )
    assert.ok(trainPoint)
    assert.equal((trainPoint.value as { count: number }).count, 2)
    const futures = metric(metrics, 'tuft.future.duration')
    const fb = futures.dataPoints.find((p) => p.attributes.future_kind === 'forward_backward')
    assert.ok(fb)
    assert.equal((fb.value as { count: number }).count, 2)
    assert.equal(valueFor(metric(metrics, 'tuft.queue.depth'), { model: MODEL, queue: 'training' }), 0)
    const engine = metric(metrics, 'tuft.engine.duration')
    assert.ok(engine.dataPoints.some((p) => p.attributes.engine_op === 'forward_backward'))
    assert.ok(valueFor(metric(metrics, 'tuft.engine.busy.time'), { model: MODEL, engine: 'training' }) > 0)
  })

  test('log lines inside a span carry its trace id, on the console and through OTel logs', () => {
    const queued = flow.logs.lines.filter((l) => l.msg === 'training future queued')
    assert.equal(queued.length, 2)
    for (const line of queued) {
      const request = byName('POST /api/v1/train').find((s) => s.spanContext().traceId === line.trace_id)
      assert.ok(request, `line ${JSON.stringify(line)} is correlated to its request`)
      assert.equal(line.span_id, request.spanContext().spanId)
      assert.ok(typeof line.reqId === 'string', 'Fastify request id kept')
    }
    // Fastify's own lines belong to the request too: the span starts with the request's logger.
    const trainSpans = new Set(byName('POST /api/v1/train').map((s) => s.spanContext().spanId))
    for (const msg of ['incoming request', 'request completed']) {
      const inSpan = flow.logs.lines.filter((l) => l.msg === msg && trainSpans.has(l.span_id as string))
      assert.equal(inSpan.length, 2, `each train request's "${msg}" line carries its span id`)
    }
    // Access lines: on the console with the request's trace id, not duplicated into OTel logs.
    const completed = flow.logs.lines.filter((l) => l.msg === 'request completed')
    assert.ok(completed.some((l) => typeof l.trace_id === 'string'))
    const accessRecords = logExporter
      .getFinishedLogRecords()
      .filter((r) => r.body === 'request completed' || r.body === 'incoming request')
    assert.equal(accessRecords.length, 0, 'export_request_logs is off by default')
    const records = logExporter.getFinishedLogRecords().filter((r) => r.body === 'sampled')
    assert.equal(records.length, 1)
    const [sampleRequest] = byName('POST /api/v1/sample')
    assert.equal(records[0]?.spanContext?.traceId, sampleRequest?.spanContext().traceId)
    assert.equal(records[0]?.severityText, 'INFO')
    assert.equal(records[0]?.attributes.request_id, 'req-3')
  })

  test('an incoming traceparent is continued', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const res = await sampleTraced(flow, traceId)
    assert.equal(res.statusCode, 200)
    const [engine] = spans
      .getFinishedSpans()
      .filter((s) => s.name === 'engine sample' && s.attributes['tokens.prompt'] === 2)
    assert.equal(engine?.spanContext().traceId, traceId)
    const request = byName('POST /api/v1/sample').find((s) => s.spanContext().traceId === traceId)
    assert.equal(request?.parentSpanContext?.spanId, '00f067aa0ba902b7')
    assert.equal(request?.parentSpanContext?.isRemote, true)
  })

  test('an unsampled incoming traceparent: ids reach the log lines, no span is exported', async () => {
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4736'
    const res = await flow.app.inject({
      method: 'POST',
      url: '/api/v1/session_heartbeat',
      headers: { 'x-api-key': 'tml-alice-secret', traceparent: `00-${traceId}-00f067aa0ba902b7-00` },
      payload: { session_id: 'nope' },
    })
    assert.equal(res.statusCode, 404)
    await telemetry.forceFlush()
    assert.equal(spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId).length, 0)
    const line = flow.logs.lines.find((l) => l.trace_id === traceId && l.msg === 'request completed')
    assert.equal(line?.trace_flags, '00')
    assert.match(String(line?.span_id), /^[0-9a-f]{16}$/)
    assert.notEqual(line?.span_id, '00f067aa0ba902b7')
  })

  test('a checkpoint operation given its request is a child of the future, with run, user and bytes', async () => {
    const trace = {
      requestId: 'save-1',
      userId: 'alice',
      sessionId: 's-alice',
      trainingRunId: 's-alice:train:0',
    }
    flow.events.emit('future.queued', { trace, kind: 'save_weights', modelName: MODEL })
    const engine = instrumentTrainingEngine(new FakeTraining(), telemetry, MODEL)
    await engine.saveState('s-alice:train:0', '/nonexistent', { optimizer: true }, { requests: [trace] })
    flow.events.emit('future.done', { trace, kind: 'save_weights', modelName: MODEL, ok: true, totalMs: 1 })
    const all = spans.getFinishedSpans()
    const future = all.find((s) => s.name === 'future save_weights')
    const save = all.find((s) => s.name === 'engine save_state')
    assert.ok(future && save)
    assert.equal(save.parentSpanContext?.spanId, future.spanContext().spanId)
    assert.equal(save.attributes.user_id, 'alice')
    assert.equal(save.attributes.training_run_id, 's-alice:train:0')
    assert.equal(save.attributes['checkpoint.bytes'], 4096)
  })

  test('a failing engine call is an error span and an error duration sample', async () => {
    const broken = new FakeTraining()
    broken.forwardBackward = async () => {
      throw new Error('device lost')
    }
    const engine = instrumentTrainingEngine(broken, telemetry, 'broken/model')
    await assert.rejects(engine.forwardBackward([], { requests: [] }), /device lost/)
    const failed = spans
      .getFinishedSpans()
      .find((s) => s.name === 'engine forward_backward' && s.status.code === SpanStatusCode.ERROR)
    assert.equal(failed?.status.message, 'device lost')
    assert.equal(failed?.events[0]?.name, 'exception')
  })
})

describe('trace sampling (trace_sample_ratio)', () => {
  test('at 0 no new trace is exported, a sampled traceparent still is, metrics and log ids stay', async () => {
    const spans = new InMemorySpanExporter()
    const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const config = telemetryConfig({ trace_sample_ratio: 0 })
    const telemetry = await createTelemetry(config, {
      exporters: { spans, metrics },
      metricExportIntervalMs: 3_600_000,
    })
    assert.ok(telemetry)
    const flow = await buildFlowApp({ config, telemetry })
    try {
      await runFlow(flow)
      const traceId = '6bf92f3577b34da6a3ce929d0e0e4736'
      const res = await sampleTraced(flow, traceId)
      assert.equal(res.statusCode, 200)
      await telemetry.forceFlush()
      const exported = spans.getFinishedSpans()
      assert.ok(exported.length >= 2, 'the request span and its engine span')
      assert.ok(exported.every((s) => s.spanContext().traceId === traceId))
      const http = metric(metrics, 'http.server.request.duration')
      const train = http.dataPoints.find((p) => p.attributes['http.route'] === '/api/v1/train')
      assert.equal((train?.value as { count: number } | undefined)?.count, 2, 'metrics count every request')
      const completed = flow.logs.lines.filter((l) => l.msg === 'request completed')
      assert.ok(completed.length >= 4)
      assert.ok(completed.every((l) => typeof l.trace_id === 'string'))
      assert.equal(completed.filter((l) => l.trace_flags === '00').length, completed.length - 1)
    } finally {
      await flow.app.close()
    }
  })
})

describe('telemetry disabled', () => {
  test('nothing is started or installed: no provider, no hook, the engine is not wrapped', async () => {
    const config = telemetryConfig({ enabled: false })
    assert.equal(await createTelemetry(config), null)
    const engine = new FakeTraining()
    assert.equal(instrumentTrainingEngine(engine, null, MODEL), engine)
    const flow = await buildFlowApp({ config })
    try {
      assert.equal(flow.app.telemetry, null)
      let seen: unknown = 'unset'
      flow.app.get('/probe', async (request) => {
        seen = Object.hasOwn(request, 'otelSpan') || 'otelSpan' in request
        return {}
      })
      await runFlow(flow)
      await flow.app.inject({ url: '/probe', headers: { 'x-api-key': 'tml-alice-secret' } })
      assert.equal(seen, false, 'no request decorator')
      const line = flow.logs.lines.find((l) => l.msg === 'training future queued')
      assert.ok(line)
      assert.equal(line.trace_id, undefined, 'no mixin')
      assert.equal(flow.app.hasRoute({ method: 'GET', url: '/metrics' }), false)
    } finally {
      await flow.app.close()
    }
  })
})
