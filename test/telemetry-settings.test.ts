// Small pieces of telemetry: where exports go (config vs TUFT_OTLP_ENDPOINT vs TUFT_OTEL_DEBUG), the
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
import { resolveExport } from '../plugins/telemetry/settings.js'
import { telemetryConfig } from './telemetry-harness.js'

describe('resolveExport', () => {
  test('config endpoint, overridden by TUFT_OTLP_ENDPOINT; trailing slashes dropped', () => {
    const config = telemetryConfig({ otlp_endpoint: 'http://collector:4318/' })
    assert.deepEqual(resolveExport(config, {}), {
      endpoint: 'http://collector:4318',
      protocol: 'http/protobuf',
      console: false,
    })
    assert.equal(
      resolveExport(config, { TUFT_OTLP_ENDPOINT: 'https://otel.example:443' }).endpoint,
      'https://otel.example:443',
    )
  })

  test('no endpoint anywhere: the protocol default, or console only under TUFT_OTEL_DEBUG=1', () => {
    assert.equal(resolveExport(telemetryConfig(), {}).endpoint, 'http://localhost:4318')
    assert.equal(
      resolveExport(telemetryConfig({ otlp_protocol: 'grpc' }), {}).endpoint,
      'http://localhost:4317',
    )
    assert.deepEqual(resolveExport(telemetryConfig(), { TUFT_OTEL_DEBUG: '1' }), {
      endpoint: null,
      protocol: 'http/protobuf',
      console: true,
    })
    const both = resolveExport(telemetryConfig({ otlp_endpoint: 'http://c:4318' }), { TUFT_OTEL_DEBUG: '1' })
    assert.equal(both.endpoint, 'http://c:4318')
    assert.equal(both.console, true)
  })

  test('a malformed endpoint is a TUFT_CONFIG error', () => {
    for (const bad of ['collector:4318', 'ftp://collector', 'not a url']) {
      assert.throws(
        () => resolveExport(telemetryConfig({ otlp_endpoint: bad }), {}),
        (err) => isTuftError(err) && err.code === 'TUFT_CONFIG' && err.message.includes(bad),
      )
    }
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
