// The fast OTLP/protobuf span serializer must write exactly the official serializer's bytes: spans
// from the real SDK and from RequestSpans, every attribute value kind, and a few hand-made spans for
// what the SDK does not produce (byte and kvlist values, odd counts, scope attributes).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import { TraceState } from '@opentelemetry/core'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanLimits,
} from '@opentelemetry/sdk-trace-base'
import { FastProtobufTraceSerializer } from '../plugins/telemetry/otlp-span-serializer.js'
import { RequestSpans } from '../plugins/telemetry/request-span.js'

function assertSameBytes(spans: ReadableSpan[]): void {
  const fast = FastProtobufTraceSerializer.serializeRequest(spans)
  const official = ProtobufTraceSerializer.serializeRequest(spans)
  assert.ok(fast instanceof Uint8Array && official instanceof Uint8Array)
  assert.deepEqual(Buffer.from(fast), Buffer.from(official))
}

const RESOURCE_ATTRIBUTES: Attributes = {
  'service.name': 'tuft',
  'service.instance.id': 'instance-é-中文',
  'process.pid': 4242,
  'host.load': 0.75,
  'deployment.canary': true,
  'process.command_args': ['node', 'bin/tuft.js', '--port', '8080'],
}

const REMOTE_PARENT: SpanContext = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: new TraceState('vendor=abc,other=x-1'),
}

const ALL_VALUES: Attributes = {
  string: 'value',
  empty: '',
  accents: 'é à ü',
  cjk: '中文字符',
  emoji: '🚀 launch 👍',
  long: 'x'.repeat(300),
  int: 42,
  zero: 0,
  negative: -17,
  'int.big': 2 ** 40 + 7,
  'int.beyond.safe': 2 ** 60,
  'int.negative.big': -(2 ** 35) - 3,
  'int.min': -(2 ** 63),
  'int.overflow': 2 ** 63,
  double: 1234.5678,
  'double.negative': -0.5,
  'double.tiny': 5e-324,
  nan: Number.NaN,
  infinity: Number.POSITIVE_INFINITY,
  true: true,
  false: false,
  strings: ['a', '', 'é', '中文', '🙂'],
  ints: [1, -1, 2 ** 33, 0],
  doubles: [1.5, -2.25],
  booleans: [true, false, true],
  'with.nulls': ['a', null, 'b', undefined],
  'array.empty': [],
}

interface Sdk {
  provider: BasicTracerProvider
  exporter: InMemorySpanExporter
}

function sdk(resource: Resource, spanLimits?: SpanLimits): Sdk {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    ...(spanLimits && { spanLimits }),
  })
  return { provider, exporter }
}

/** A varied batch of real SDK spans from two scopes of one provider. */
function sdkSpans({ provider, exporter }: Sdk, count = 1): ReadableSpan[] {
  const http = provider.getTracer('tuft-http')
  const engine = provider.getTracer('tuft-engine', '1.4.0', {
    schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
  })
  const remote = trace.setSpanContext(ROOT_CONTEXT, REMOTE_PARENT)
  const kinds = [SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER]
  for (let i = 0; i < count; i++) {
    const server = http.startSpan(
      'POST /api/v1/session_heartbeat',
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': 'POST',
          'url.path': `/api/v1/session_heartbeat/${i}`,
          'http.request.id': `req-${i}`,
          user_id: 'user-é',
          'http.route': '/api/v1/session_heartbeat',
        },
      },
      i % 2 === 0 ? remote : ROOT_CONTEXT,
    )
    server.setAttribute('http.response.status_code', 200 + (i % 300))
    const parent: Context = trace.setSpan(ROOT_CONTEXT, server)
    const child = engine.startSpan(
      `engine step ${i} — 中文`,
      {
        kind: kinds[i % kinds.length],
        attributes: ALL_VALUES,
        links: [
          { context: REMOTE_PARENT, attributes: { 'link.reason': 'retry', 'link.attempt': 2 } },
          { context: server.spanContext() },
        ],
      },
      parent,
    )
    child.addEvent('queued')
    child.addEvent('started', { 'queue.depth': i, 'queue.name': 'gpu-é', ratio: 0.5 })
    child.recordException(new Error('boom 🚀'))
    child.addLink({ context: { ...REMOTE_PARENT, traceState: undefined, isRemote: false } })
    child.setStatus({ code: SpanStatusCode.ERROR, message: i % 3 === 0 ? 'engine failed: é' : '' })
    child.end()
    const internal = engine.startSpan('internal', {}, parent)
    internal.setStatus({ code: SpanStatusCode.OK })
    internal.end()
    server.end()
  }
  const spans = exporter.getFinishedSpans()
  exporter.reset()
  return spans
}

function requestSpans(resource: Resource, count: number): ReadableSpan[] {
  const finished: ReadableSpan[] = []
  const processor = {
    onStart: () => {},
    onEnd: (span: ReadableSpan) => finished.push(span),
    forceFlush: async () => {},
    shutdown: async () => {},
  }
  const owner = new RequestSpans(resource, { name: 'tuft-http', version: '0.1.0' }, [processor])
  for (let i = 0; i < count; i++) {
    const span = owner.start(
      'POST /api/v1/session_heartbeat',
      {
        'http.request.method': 'POST',
        'url.path': '/api/v1/session_heartbeat',
        'http.request.id': `req-${i}`,
      },
      i % 2 === 0 ? REMOTE_PARENT : undefined,
    )
    span.setAttribute('user_id', `user-${i % 7}`)
    span.setAttribute('http.response.status_code', i % 5 === 0 ? 500 : 200)
    span.setAttribute('http.route', '/api/v1/session_heartbeat')
    if (i % 5 === 0) span.setStatus({ code: SpanStatusCode.ERROR, message: 'internal error' })
    span.end()
  }
  return finished
}

/** Spans the SDK cannot make: values and fields its validation or types leave out. */
function handMadeSpans(): ReadableSpan[] {
  const resource = {
    attributes: { 'service.name': 'hand', 'service.bytes': new Uint8Array([0, 1, 255]) },
    schemaUrl: 'https://example.com/resource-schema',
  } as unknown as Resource
  const scope = { name: 'scoped', version: '', attributes: { 'scope.attr': 'x' }, droppedAttributesCount: 3 }
  const base = {
    name: 'hand-made',
    kind: undefined,
    spanContext: () => ({
      traceId: '0AF7651916CD43DD8448EB211C80319C',
      spanId: 'B7AD6B7169203331',
      traceFlags: 3,
    }),
    parentSpanContext: { traceId: '', spanId: '', traceFlags: 0 },
    startTime: [1_700_000_000, 999_999_999],
    endTime: [4_000_000_000, 1],
    duration: [0, 0],
    ended: true,
    status: { code: SpanStatusCode.UNSET },
    attributes: {
      bytes: new Uint8Array(200).fill(7),
      kvlist: { a: 1, b: 'two', nested: { deep: [true, { x: null }] } },
      'nested.arrays': [[1, 2], ['a'], []],
      'mixed.array': [1, 'a', true, 1.5, null],
      null: null,
      undefined: undefined,
      negativeZero: -0,
      'lone.surrogate': 'a\ud800b',
      'big.kvlist': Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`key-${i}`, `value-${i}`])),
    },
    links: [],
    events: [{ name: '', time: [0, 0], droppedAttributesCount: undefined }],
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 5,
    droppedEventsCount: 300,
    droppedLinksCount: undefined,
  }
  return [
    base,
    // An equal but distinct scope object is a group of its own, as in the official serializer.
    { ...base, kind: SpanKind.CLIENT, instrumentationScope: { ...scope }, attributes: undefined },
  ] as unknown as ReadableSpan[]
}

describe('FastProtobufTraceSerializer', () => {
  const resource = resourceFromAttributes(RESOURCE_ATTRIBUTES)
  const limited = resourceFromAttributes(
    { 'service.name': 'other', 'service.version': '2.0' },
    { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' },
  )

  test('an empty batch', () => {
    assertSameBytes([])
  })

  test('SDK spans: scopes, parents, trace state, events, links, statuses, every value kind', () => {
    assertSameBytes(sdkSpans(sdk(resource), 6))
  })

  test('dropped attributes, events and links', () => {
    const spans = sdkSpans(sdk(limited, { attributeCountLimit: 4, eventCountLimit: 1, linkCountLimit: 1 }), 3)
    assert.ok(
      spans.some((s) => s.droppedAttributesCount > 0 && s.droppedEventsCount > 0 && s.droppedLinksCount > 0),
    )
    assertSameBytes(spans)
  })

  test('spans of two resources interleaved in one batch', () => {
    const a = sdkSpans(sdk(resource), 3)
    const b = sdkSpans(sdk(limited), 3)
    const mixed = a.flatMap((span, i) => (b[i] ? [span, b[i]] : [span]))
    assertSameBytes([...mixed, ...requestSpans(resource, 5)])
  })

  test('request spans', () => {
    assertSameBytes(requestSpans(resource, 20))
  })

  test('a thousand spans grow the buffer', () => {
    assertSameBytes([...requestSpans(resource, 1000), ...sdkSpans(sdk(resource), 50)])
  })

  test('spans the SDK cannot make', () => {
    assertSameBytes(handMadeSpans())
  })

  test('an attribute of several megabytes, then a small batch', () => {
    const [span] = requestSpans(resource, 1)
    span!.attributes.body = 'é'.repeat(3_000_000)
    assertSameBytes([span!])
    assertSameBytes(requestSpans(resource, 3))
  })

  test('the same batch twice gives the same bytes, and the first result is not reused', () => {
    const spans = sdkSpans(sdk(resource), 4)
    const first = FastProtobufTraceSerializer.serializeRequest(spans)!
    const copy = Buffer.from(first)
    FastProtobufTraceSerializer.serializeRequest(requestSpans(limited, 10))
    const second = FastProtobufTraceSerializer.serializeRequest(spans)!
    assert.deepEqual(Buffer.from(second), copy)
    assert.deepEqual(Buffer.from(first), copy)
    assertSameBytes(spans)
  })
})
