// Small pieces of telemetry: what settings.ts decides from the file, TUFT_* and OTEL_* variables, the
// engine busy accounting, and logger options (redaction, pretty output only on a TTY).

import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, test } from 'node:test'
import type { Span } from '@opentelemetry/api'
import type { Logger as OtelLogger } from '@opentelemetry/api-logs'
import pino from 'pino'
import { isTuftError } from '../core/errors.js'
import { BusyTracker } from '../plugins/telemetry/busy.js'
import {
  bindLoggerSpan,
  buildLoggerOptions,
  createLogger,
  loggerSpan,
  TelemetryLogStream,
} from '../plugins/telemetry/logging.js'
import {
  metricExportInterval,
  resolveExports,
  resolveResource,
  resolveSampler,
  sdkDisabled,
} from '../plugins/telemetry/settings.js'
import { telemetryConfig } from './telemetry-harness.js'

const TUFT_CONFIG = (text: string) => (err: unknown) =>
  isTuftError(err) && err.code === 'TUFT_CONFIG' && err.message.includes(text)

describe('resolveExports: where each signal goes', () => {
  const urls = (plan: ReturnType<typeof resolveExports>) => ({
    traces: plan.traces.otlp?.url,
    metrics: plan.metrics.otlp?.url,
    logs: plan.logs.otlp?.url,
  })

  test('the file, then OTEL_EXPORTER_OTLP_ENDPOINT, then TUFT_OTLP_ENDPOINT; /v1/<signal> appended for HTTP', () => {
    const config = telemetryConfig({ otlp_endpoint: 'http://file:4318/' })
    assert.deepEqual(urls(resolveExports(config, {})), {
      traces: 'http://file:4318/v1/traces',
      metrics: 'http://file:4318/v1/metrics',
      logs: 'http://file:4318/v1/logs',
    })
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318' }
    assert.equal(resolveExports(config, otel).traces.otlp?.url, 'http://otel:4318/v1/traces')
    const both = { ...otel, TUFT_OTLP_ENDPOINT: 'https://tuft.example:443' }
    assert.equal(resolveExports(config, both).logs.otlp?.url, 'https://tuft.example:443/v1/logs')
  })

  test('a per-signal endpoint is used as is and beats every base; empty variables count as unset', () => {
    const env = {
      TUFT_OTLP_ENDPOINT: 'http://tuft:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/custom/traces',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: ' ',
    }
    assert.deepEqual(urls(resolveExports(telemetryConfig(), env)), {
      traces: 'http://tempo:4318/custom/traces',
      metrics: 'http://tuft:4318/v1/metrics',
      logs: 'http://tuft:4318/v1/logs',
    })
  })

  test('protocol: per signal, then OTEL_EXPORTER_OTLP_PROTOCOL, then the file; grpc keeps the base URL', () => {
    const config = telemetryConfig({ otlp_protocol: 'grpc' })
    const plan = resolveExports(config, {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc',
    })
    assert.deepEqual(plan.traces.otlp, { url: 'http://localhost:4318/v1/traces', protocol: 'http/json' })
    assert.deepEqual(plan.metrics.otlp, { url: 'http://localhost:4317', protocol: 'grpc' })
    assert.deepEqual(resolveExports(config, {}).logs.otlp, { url: 'http://localhost:4317', protocol: 'grpc' })
  })

  test('TUFT_OTEL_DEBUG=1 adds the console, replacing OTLP only where no endpoint is named anywhere', () => {
    const debug = resolveExports(telemetryConfig(), { TUFT_OTEL_DEBUG: '1' })
    assert.deepEqual(debug.traces, { otlp: null, console: true })
    const named = resolveExports(telemetryConfig(), {
      TUFT_OTEL_DEBUG: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
    })
    assert.deepEqual(named.metrics, {
      otlp: { url: 'http://c:4318/v1/metrics', protocol: 'http/protobuf' },
      console: true,
    })
    const file = resolveExports(telemetryConfig({ otlp_endpoint: 'http://c:4318' }), { TUFT_OTEL_DEBUG: '1' })
    assert.equal(file.logs.console, true)
    assert.equal(file.logs.otlp?.url, 'http://c:4318/v1/logs')
  })

  test('OTEL_<SIGNAL>_EXPORTER picks otlp, console or none per signal', () => {
    const plan = resolveExports(telemetryConfig(), {
      OTEL_TRACES_EXPORTER: 'console,otlp',
      OTEL_LOGS_EXPORTER: 'none',
    })
    assert.equal(plan.traces.console, true)
    assert.equal(plan.traces.otlp?.url, 'http://localhost:4318/v1/traces')
    assert.deepEqual(plan.metrics, {
      otlp: { url: 'http://localhost:4318/v1/metrics', protocol: 'http/protobuf' },
      console: false,
    })
    assert.deepEqual(plan.logs, { otlp: null, console: false })
  })

  test('bad values are TUFT_CONFIG errors naming the variable, not warnings', () => {
    const bad: [Record<string, string>, string][] = [
      [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml' }, "OTEL_EXPORTER_OTLP_PROTOCOL='http/xml'"],
      [{ OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'udp' }, 'expected http/protobuf, http/json, grpc'],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, "OTEL_EXPORTER_OTLP_ENDPOINT='collector:4318'"],
      [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://c' }, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
      [{ OTEL_EXPORTER_OTLP_HEADERS: 'authorization' }, 'OTEL_EXPORTER_OTLP_HEADERS'],
      [{ OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'a=%zz' }, 'OTEL_EXPORTER_OTLP_METRICS_HEADERS'],
      [{ OTEL_METRICS_EXPORTER: 'prometheus' }, 'telemetry.prometheus.enabled'],
      [{ OTEL_TRACES_EXPORTER: 'zipkin' }, "OTEL_TRACES_EXPORTER='zipkin'"],
    ]
    for (const [env, text] of bad)
      assert.throws(() => resolveExports(telemetryConfig(), env), TUFT_CONFIG(text), JSON.stringify(env))
    const none = { OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' }
    assert.throws(
      () => resolveExports(telemetryConfig(), { ...none, OTEL_EXPORTER_OTLP_PROTOCOL: 'x' }),
      TUFT_CONFIG('OTEL_EXPORTER_OTLP_PROTOCOL'),
      'checked even where no OTLP exporter uses it',
    )
    for (const endpoint of ['collector:4318', 'ftp://collector', 'not a url'])
      assert.throws(
        () => resolveExports(telemetryConfig({ otlp_endpoint: endpoint }), {}),
        TUFT_CONFIG(`telemetry.otlp_endpoint='${endpoint}'`),
      )
  })
})

describe('resolveResource, resolveSampler and the other OTEL_* variables', () => {
  test('service name and attributes: the file, then OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME', () => {
    const config = telemetryConfig({ resource_attributes: { 'deployment.environment': 'test', team: 'ml' } })
    const file = resolveResource(config, {})
    assert.equal(file['service.name'], 'tuft-test')
    assert.equal(file.team, 'ml')
    assert.match(file['service.instance.id'] ?? '', /^[0-9a-f-]{36}$/)
    const env = resolveResource(config, {
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod, service.name=from-attrs,k8s.pod.name=a%2Cb',
    })
    assert.equal(env['deployment.environment'], 'prod')
    assert.equal(env['service.name'], 'from-attrs')
    assert.equal(env['k8s.pod.name'], 'a,b', 'values are percent-decoded')
    assert.equal(env.team, 'ml')
    const named = resolveResource(config, {
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs',
      OTEL_SERVICE_NAME: 'from-name',
    })
    assert.equal(named['service.name'], 'from-name')
    assert.throws(
      () => resolveResource(config, { OTEL_RESOURCE_ATTRIBUTES: 'a=b,=c' }),
      TUFT_CONFIG('OTEL_RESOURCE_ATTRIBUTES'),
    )
  })

  test('OTEL_TRACES_SAMPLER (+ _ARG) replaces trace_sample_ratio; bad names and ratios are errors', () => {
    const config = telemetryConfig({ trace_sample_ratio: 0.25 })
    assert.deepEqual(resolveSampler(config, {}), { name: 'parentbased_traceidratio', ratio: 0.25 })
    assert.deepEqual(
      resolveSampler(config, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }),
      { name: 'traceidratio', ratio: 0.5 },
    )
    assert.deepEqual(resolveSampler(config, { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }), {
      name: 'parentbased_traceidratio',
      ratio: 1,
    })
    assert.deepEqual(resolveSampler(config, { OTEL_TRACES_SAMPLER: 'always_off' }), {
      name: 'always_off',
      ratio: 1,
    })
    assert.throws(
      () => resolveSampler(config, { OTEL_TRACES_SAMPLER: 'jaeger_remote' }),
      TUFT_CONFIG("OTEL_TRACES_SAMPLER='jaeger_remote'"),
    )
    for (const arg of ['1.5', '-0.1', 'half'])
      assert.throws(
        () => resolveSampler(config, { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }),
        TUFT_CONFIG(`OTEL_TRACES_SAMPLER_ARG='${arg}'`),
      )
  })

  test('OTEL_SDK_DISABLED and OTEL_METRIC_EXPORT_INTERVAL', () => {
    assert.equal(sdkDisabled({}), false)
    assert.equal(sdkDisabled({ OTEL_SDK_DISABLED: 'TRUE' }), true)
    assert.equal(sdkDisabled({ OTEL_SDK_DISABLED: 'false' }), false)
    assert.throws(() => sdkDisabled({ OTEL_SDK_DISABLED: 'yes' }), TUFT_CONFIG('OTEL_SDK_DISABLED'))
    assert.equal(metricExportInterval({}), 15_000)
    assert.equal(metricExportInterval({ OTEL_METRIC_EXPORT_INTERVAL: '5000' }), 5000)
    assert.throws(
      () => metricExportInterval({ OTEL_METRIC_EXPORT_INTERVAL: '0' }),
      TUFT_CONFIG('OTEL_METRIC_EXPORT_INTERVAL'),
    )
  })
})

describe('BusyTracker', () => {
  test('counts time with at least one call in flight, overlapping calls once', () => {
    let t = 0
    const busy = new BusyTracker(() => t)
    busy.begin() // t=0
    t = 100
    busy.begin() // overlapping
    t = 300
    busy.end()
    t = 400
    busy.end()
    t = 1000
    assert.equal(busy.busySeconds(), 0.4)
    assert.equal(busy.fraction(), 0.4)
    busy.begin()
    t = 1500
    assert.equal(busy.busySeconds(), 0.9, 'includes the call in flight')
    assert.equal(busy.fraction(), 0.4, 'a window shorter than a second keeps the last value')
    t = 2000
    assert.equal(busy.fraction(), 1)
  })
})

describe('buildLoggerOptions', () => {
  class Capture extends Writable {
    text = ''
    override _write(chunk: Buffer, _e: BufferEncoding, done: () => void) {
      this.text += chunk.toString()
      done()
    }
  }

  test('redacts API keys and uses plain JSON when stdout is not a TTY', () => {
    const out = new Capture()
    const options = buildLoggerOptions(
      { log_level: 'debug', telemetry: telemetryConfig({ enabled: false }) },
      { stdout: out },
    )
    assert.equal(options.level, 'debug')
    assert.equal(options.mixin, undefined)
    const log = pino(options, options.stream as pino.DestinationStream)
    log.info({ req: { headers: { 'x-api-key': 'tml-secret', authorization: 'Bearer x' } } }, 'hello')
    const line = JSON.parse(out.text)
    assert.equal(line.msg, 'hello')
    assert.equal(line.req.headers['x-api-key'], '[redacted]')
    assert.equal(line.req.headers.authorization, '[redacted]')
    assert.ok(!out.text.includes('tml-secret'))
  })

  test('pretty output on a TTY; a telemetry stream when enabled', () => {
    const tty = Object.assign(new Capture(), { isTTY: true })
    const pretty = buildLoggerOptions(
      { log_level: 'info', telemetry: telemetryConfig({ enabled: false }) },
      { stdout: tty },
    )
    const log = pino(pretty, pretty.stream as pino.DestinationStream)
    log.info('hello pretty')
    assert.ok(tty.text.includes('hello pretty'))
    assert.throws(() => JSON.parse(tty.text), 'pretty output is not JSON')
    const withTelemetry = buildLoggerOptions(
      { log_level: 'info', telemetry: telemetryConfig() },
      { stdout: new Capture() },
    )
    assert.ok(withTelemetry.stream instanceof TelemetryLogStream)
  })

  test('a logger bound to a span writes its ids in every line, its children too, its parent not', () => {
    const out = new Capture()
    const log = createLogger({ log_level: 'info', telemetry: telemetryConfig() }, { stdout: out })
    const span = {
      spanContext: () => ({
        traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        spanId: '00f067aa0ba902b7',
        traceFlags: 1,
      }),
    } as Span
    const request = log.child({ reqId: 'req-1' })
    bindLoggerSpan(request, span)
    request.info('one')
    request.child({ run: 'r' }).info({ n: 2 }, 'two')
    log.info('three')
    const lines = out.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.equal(lines.length, 3)
    for (const line of lines.slice(0, 2)) {
      assert.equal(line.trace_id, '4bf92f3577b34da6a3ce929d0e0e4736')
      assert.equal(line.span_id, '00f067aa0ba902b7')
      assert.equal(line.trace_flags, '01')
      assert.equal(line.reqId, 'req-1')
    }
    assert.equal(lines[1].run, 'r')
    assert.equal(lines[2].trace_id, undefined)
    assert.equal(loggerSpan(request), span)
    assert.equal(loggerSpan(log), undefined)
  })

  test("Fastify's access lines reach OTel logs only with requestLines; the console always", () => {
    const forwarded = (requestLines: boolean | undefined) => {
      const console = new Capture()
      const stream = new TelemetryLogStream(console)
      const bodies: unknown[] = []
      const sink = { emit: (record: { body?: unknown }) => bodies.push(record.body) }
      stream.attach(sink as unknown as OtelLogger, undefined, { requestLines })
      const log = pino({ level: 'info' }, stream)
      log.info({ reqId: 'r1', req: { method: 'POST' } }, 'incoming request')
      log.info({ reqId: 'r1', res: { statusCode: 200 } }, 'request completed')
      log.error({ reqId: 'r2' }, 'request errored')
      log.info('request completed soon') // only the exact message is an access line
      assert.equal(console.text.trim().split('\n').length, 4, 'every line on the console')
      return bodies
    }
    assert.deepEqual(forwarded(undefined), ['request errored', 'request completed soon'])
    assert.deepEqual(forwarded(true), [
      'incoming request',
      'request completed',
      'request errored',
      'request completed soon',
    ])
  })
})
