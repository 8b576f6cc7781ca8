// RequestSpan: what the span processors receive, and the Span API behaviour routes rely on.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SpanStatusCode, TraceFlags } from '@opentelemetry/api'
import { hrTimeToMilliseconds } from '@opentelemetry/core'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { RequestSpans } from '../plugins/telemetry/request-span.js'

function setup() {
  const exporter = new InMemorySpanExporter()
  const spans = new RequestSpans(resourceFromAttributes({ 'service.name': 't' }), { name: 'tuft' }, [
    new SimpleSpanProcessor(exporter),
  ])
  return { exporter, spans }
}

test('an ended span reaches the processors once, with its times, status, events and links', () => {
  const { exporter, spans } = setup()
  const a = spans.start('POST', { 'http.request.method': 'POST' }, undefined)
  const b = spans.start('GET', {}, undefined)
  a.addEvent('first', { n: 1 })
  a.recordException(new TypeError('bad shape'))
  a.addLink({ context: b.spanContext() })
  a.setAttribute('http.route', '/api/v1/x').setAttribute('skipped', undefined)
  a.updateName('POST /api/v1/x')
  a.setStatus({ code: SpanStatusCode.ERROR, message: 'HTTP 500' })
  a.end()
  a.end()
  a.setAttribute('late', 1)
  b.end()
  const [first, second] = exporter.getFinishedSpans()
  assert.equal(exporter.getFinishedSpans().length, 2)
  assert.equal(first?.name, 'POST /api/v1/x')
  assert.deepEqual(first?.attributes, { 'http.request.method': 'POST', 'http.route': '/api/v1/x' })
  assert.deepEqual(
    first?.events.map((e) => [e.name, e.attributes]),
    [
      ['first', { n: 1 }],
      [
        'exception',
        {
          'exception.type': 'TypeError',
          'exception.message': 'bad shape',
          'exception.stacktrace': a.events[1]?.attributes?.['exception.stacktrace'],
        },
      ],
    ],
  )
  assert.equal(first?.links[0]?.context.spanId, b.spanContext().spanId)
  assert.deepEqual(first?.status, { code: SpanStatusCode.ERROR, message: 'HTTP 500' })
  assert.deepEqual(second?.events, [], 'events of one span are not shared with another')
  assert.deepEqual(second?.links, [])
  assert.equal(second?.status.code, SpanStatusCode.UNSET)
  const start = hrTimeToMilliseconds(first!.startTime)
  const end = hrTimeToMilliseconds(first!.endTime)
  assert.ok(Math.abs(start - Date.now()) < 5_000 && end >= start)
  assert.ok(Math.abs(hrTimeToMilliseconds(first!.duration) - (end - start)) < 0.001)
  assert.match(a.spanContext().traceId, /^[0-9a-f]{32}$/)
  assert.notEqual(a.spanContext().traceId, b.spanContext().traceId)
})

test('a remote parent gives the trace and the sampling decision', () => {
  const { exporter, spans } = setup()
  const parent = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', isRemote: true }
  const sampled = spans.start('GET', {}, { ...parent, traceFlags: TraceFlags.SAMPLED })
  const unsampled = spans.start('GET', {}, { ...parent, traceFlags: TraceFlags.NONE })
  sampled.end()
  unsampled.end()
  assert.equal(unsampled.spanContext().traceId, parent.traceId)
  assert.equal(unsampled.spanContext().traceFlags, TraceFlags.NONE)
  const exported = exporter.getFinishedSpans()
  assert.equal(exported.length, 1)
  assert.equal(exported[0]?.parentSpanContext?.spanId, parent.spanId)
  assert.equal(exported[0]?.spanContext().traceId, parent.traceId)
})
