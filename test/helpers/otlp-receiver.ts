// A real OTLP receiver on loopback for tests: OTLP/HTTP (protobuf or JSON bodies, optionally gzip) on
// /v1/traces, /v1/metrics and /v1/logs, and OTLP/gRPC on the collector services; payloads are decoded
// into plain spans, metric points and log records the tests can assert on.

import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import * as grpc from '@grpc/grpc-js'
import protobuf from 'protobufjs'

// The subset of opentelemetry-proto (common, resource, trace, metrics, logs, collector) the SDK sends.
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; repeated Event events = 11; repeated Link links = 13; Status status = 15;
}
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message NumberDataPoint {
  repeated KeyValue attributes = 7; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  oneof value { double as_double = 4; sfixed64 as_int = 6; }
}
message HistogramDataPoint {
  repeated KeyValue attributes = 9; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  fixed64 count = 4; optional double sum = 5; repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7;
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message Metric {
  string name = 1; string description = 2; string unit = 3;
  oneof data { Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9; }
}
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message LogRecord {
  fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11; int32 severity_number = 2;
  string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6; fixed32 flags = 8;
  bytes trace_id = 9; bytes span_id = 10;
}
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ExportResponse {}
`

const root = protobuf.parse(OTLP_PROTO, { keepCase: false }).root
const TYPES = {
  traces: root.lookupType('otlp.ExportTraceServiceRequest'),
  metrics: root.lookupType('otlp.ExportMetricsServiceRequest'),
  logs: root.lookupType('otlp.ExportLogsServiceRequest'),
}
export type Signal = keyof typeof TYPES

export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  name: string
  kind: number
  attributes: Record<string, unknown>
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[]
  events: { name: string; attributes: Record<string, unknown> }[]
  status: { code: number; message: string }
  resource: Record<string, unknown>
}

export interface ReceivedPoint {
  metric: string
  unit: string
  type: 'gauge' | 'sum' | 'histogram'
  attributes: Record<string, unknown>
  /** Gauge and sum value; for histograms the sum. */
  value: number
  count?: number
  resource: Record<string, unknown>
}

export interface ReceivedLog {
  body: unknown
  severityText: string
  severityNumber: number
  traceId: string
  spanId: string
  attributes: Record<string, unknown>
  resource: Record<string, unknown>
}

export interface OtlpReceiver {
  /** Base endpoint: http://127.0.0.1:port (no signal path). */
  endpoint: string
  spans: ReceivedSpan[]
  points: ReceivedPoint[]
  logs: ReceivedLog[]
  /** Content types of the requests received, per signal (to assert the encoding used). */
  contentTypes: string[]
  /** Each export request's HTTP headers or gRPC metadata, with its signal. */
  requests: { signal: Signal; headers: Record<string, unknown> }[]
  close(): Promise<void>
}

// Decoded messages are walked generically: protobufjs objects for protobuf, plain objects for JSON.
// biome-ignore lint/suspicious/noExplicitAny: OTLP payload trees are walked dynamically
type Tree = any

function hex(value: Tree): string {
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value // OTLP/JSON already carries hex ids
  return Buffer.from(value as Uint8Array).toString('hex')
}

function anyValue(v: Tree): unknown {
  if (v === undefined || v === null) return undefined
  if (v.stringValue !== undefined && v.stringValue !== null) return v.stringValue
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue
  if (v.intValue !== undefined && v.intValue !== null) return Number(v.intValue)
  if (v.doubleValue !== undefined && v.doubleValue !== null) return Number(v.doubleValue)
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue)
  if (v.kvlistValue) return attributes(v.kvlistValue.values)
  if (v.bytesValue) return hex(v.bytesValue)
  return undefined
}

function attributes(list: Tree): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value)
  return out
}

function decode(signal: Signal, body: Buffer, contentType: string): Tree {
  if (contentType.includes('json')) return JSON.parse(body.toString('utf8'))
  return TYPES[signal].toObject(TYPES[signal].decode(body), { longs: Number, defaults: false })
}

function collect(receiver: OtlpReceiver, signal: Signal, message: Tree): void {
  if (signal === 'traces') {
    for (const rs of message.resourceSpans ?? []) {
      const resource = attributes(rs.resource?.attributes)
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          receiver.spans.push({
            traceId: hex(s.traceId),
            spanId: hex(s.spanId),
            parentSpanId: hex(s.parentSpanId),
            name: s.name,
            kind: Number(s.kind ?? 0),
            attributes: attributes(s.attributes),
            links: (s.links ?? []).map((l: Tree) => ({
              traceId: hex(l.traceId),
              spanId: hex(l.spanId),
              attributes: attributes(l.attributes),
            })),
            events: (s.events ?? []).map((e: Tree) => ({
              name: e.name,
              attributes: attributes(e.attributes),
            })),
            status: { code: Number(s.status?.code ?? 0), message: s.status?.message ?? '' },
            resource,
          })
        }
      }
    }
  } else if (signal === 'metrics') {
    for (const rm of message.resourceMetrics ?? []) {
      const resource = attributes(rm.resource?.attributes)
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          const type = m.histogram ? 'histogram' : m.sum ? 'sum' : 'gauge'
          for (const p of (m.histogram ?? m.sum ?? m.gauge)?.dataPoints ?? []) {
            const base = {
              metric: m.name,
              unit: m.unit ?? '',
              type,
              attributes: attributes(p.attributes),
              resource,
            } as const
            if (type === 'histogram')
              receiver.points.push({ ...base, value: Number(p.sum ?? 0), count: Number(p.count) })
            else receiver.points.push({ ...base, value: Number(p.asDouble ?? p.asInt ?? 0) })
          }
        }
      }
    }
  } else {
    for (const rl of message.resourceLogs ?? []) {
      const resource = attributes(rl.resource?.attributes)
      for (const sl of rl.scopeLogs ?? []) {
        for (const r of sl.logRecords ?? []) {
          receiver.logs.push({
            body: anyValue(r.body),
            severityText: r.severityText ?? '',
            severityNumber: Number(r.severityNumber ?? 0),
            traceId: hex(r.traceId),
            spanId: hex(r.spanId),
            attributes: attributes(r.attributes),
            resource,
          })
        }
      }
    }
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body
}

function emptyReceiver(): Omit<OtlpReceiver, 'endpoint' | 'close'> {
  return { spans: [], points: [], logs: [], contentTypes: [], requests: [] }
}

/** OTLP/HTTP on 127.0.0.1 (an ephemeral port). */
export async function startOtlpHttpReceiver(): Promise<OtlpReceiver> {
  const state = emptyReceiver()
  const paths: Record<string, Signal> = {
    '/v1/traces': 'traces',
    '/v1/metrics': 'metrics',
    '/v1/logs': 'logs',
  }
  const server: Server = createServer((req, res) => {
    const signal = paths[req.url ?? '']
    if (req.method !== 'POST' || signal === undefined) {
      res.writeHead(404).end()
      return
    }
    readBody(req).then(
      (body) => {
        const contentType = req.headers['content-type'] ?? ''
        state.contentTypes.push(contentType)
        state.requests.push({ signal, headers: { ...req.headers } })
        collect(receiver, signal, decode(signal, body, contentType))
        // An empty Export*ServiceResponse is a full success in both encodings.
        res.writeHead(200, {
          'content-type': contentType.includes('json') ? 'application/json' : contentType,
        })
        res.end(contentType.includes('json') ? '{}' : Buffer.alloc(0))
      },
      (err: Error) => res.writeHead(400).end(err.message),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const receiver: OtlpReceiver = {
    ...state,
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  return receiver
}

/** OTLP/gRPC on 127.0.0.1: the three collector services' Export methods. */
export async function startOtlpGrpcReceiver(): Promise<OtlpReceiver> {
  const server = new grpc.Server()
  const services: [Signal, string][] = [
    ['traces', 'opentelemetry.proto.collector.trace.v1.TraceService'],
    ['metrics', 'opentelemetry.proto.collector.metrics.v1.MetricsService'],
    ['logs', 'opentelemetry.proto.collector.logs.v1.LogsService'],
  ]
  const receiver: OtlpReceiver = { ...emptyReceiver(), endpoint: '', close: async () => {} }
  for (const [signal, service] of services) {
    const definition: grpc.ServiceDefinition = {
      Export: {
        path: `/${service}/Export`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    }
    server.addService(definition, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        receiver.contentTypes.push('application/grpc')
        receiver.requests.push({ signal, headers: call.metadata.getMap() })
        collect(receiver, signal, decode(signal, call.request, 'application/x-protobuf'))
        callback(null, Buffer.alloc(0))
      },
    })
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  )
  receiver.endpoint = `http://127.0.0.1:${port}`
  receiver.close = () =>
    new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve())
    })
  return receiver
}

/** Polls until `check` holds (exports are asynchronous), failing with what was received. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
