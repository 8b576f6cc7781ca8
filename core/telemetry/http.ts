// HTTP server telemetry as Fastify hooks: a SERVER span per request (continuing an incoming W3C
// traceparent) and the http.server.request.duration histogram. The span starts where Fastify creates
// the request's logger, so every line of that logger (Fastify's own "incoming request" included)
// carries trace_id/span_id as bindings; the request's trace context is `request.otelContext`, which
// routes hand to the services so futures and engine work descend from it. No async context manager:
// propagating context through every promise costs more than the rest of telemetry together.

import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest, RawRequestDefaultExpression } from 'fastify'
import { ATTR } from './attributes.js'
import type { Telemetry } from './sdk.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span; null until started, and after it ended. Absent with telemetry off. */
    otelSpan: Span | null
    /** The request's trace context (opaque to services: RequestTrace.otelContext). Absent with telemetry off. */
    otelContext: Context | null
  }
}

/** Who made the request (never the credential); undefined before authentication. */
export type UserOf = (request: FastifyRequest) => string | undefined

/** The trace context to pass with work a request causes; undefined when telemetry is off. */
export function traceContextOf(request: FastifyRequest): unknown {
  return (request as { otelContext?: Context | null }).otelContext ?? undefined
}

const propagator = new W3CTraceContextPropagator()
const headerGetter = {
  get: (carrier: RawRequestDefaultExpression['headers'], key: string) => carrier[key],
  keys: (carrier: RawRequestDefaultExpression['headers']) => Object.keys(carrier),
}
/** trace_flags as written in a line, for the two flag values W3C defines (others are formatted). */
const FLAGS = ['00', '01']
/** Where the logger factory leaves a request's span and context for the onRequest hook. */
const STARTED = Symbol('tuft.otel.request')

interface Started {
  span: Span
  context: Context
}
type RawWithSpan = RawRequestDefaultExpression & { [STARTED]?: Started }

export function installHttpTelemetry(app: FastifyInstance, telemetry: Telemetry, userOf: UserOf): void {
  const { tracer, instruments, backlog } = telemetry

  /** Ends the request span once, named by its route. */
  const endSpan = (request: FastifyRequest, attributes: Attributes, error: string | null): void => {
    const span = request.otelSpan
    if (span === null || span === undefined) return
    request.otelSpan = null
    const user = userOf(request)
    if (user !== undefined) span.setAttribute(ATTR.userId, user)
    const route = request.routeOptions.url
    if (route !== undefined) span.updateName(`${request.method} ${route}`)
    span.setAttributes(attributes)
    if (error !== null) span.setStatus({ code: SpanStatusCode.ERROR, message: error })
    span.end()
  }

  if (tracer !== null) {
    const start = (raw: RawRequestDefaultExpression, requestId: unknown): Started => {
      // Most requests carry no trace context: skip the propagator's parsing then.
      const parent =
        raw.headers.traceparent === undefined
          ? ROOT_CONTEXT
          : propagator.extract(ROOT_CONTEXT, raw.headers, headerGetter)
      const url = raw.url ?? '/'
      const query = url.indexOf('?')
      const method = raw.method ?? 'GET'
      const span = tracer.startSpan(
        method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': method,
            'url.path': query === -1 ? url : url.slice(0, query),
            'http.request.id': String(requestId),
          },
        },
        parent,
      )
      return { span, context: trace.setSpan(parent, span) }
    }
    app.setChildLoggerFactory((logger, bindings, options, raw) => {
      const started = start(raw, bindings.reqId)
      ;(raw as RawWithSpan)[STARTED] = started
      const sc = started.span.spanContext()
      const flags = FLAGS[sc.traceFlags] ?? `0${sc.traceFlags.toString(16)}`.slice(-2)
      return logger.child(
        { ...bindings, trace_id: sc.traceId, span_id: sc.spanId, trace_flags: flags },
        options,
      )
    })
    app.decorateRequest('otelSpan', null)
    app.decorateRequest('otelContext', null)
    app.addHook('onRequest', (request, _reply, done) => {
      const raw = request.raw as RawWithSpan
      // Fastify makes no request logger for some requests (e.g. its 404 path): start the span here then.
      const started = raw[STARTED] ?? start(raw, request.id)
      raw[STARTED] = undefined
      request.otelSpan = started.span
      request.otelContext = started.context
      done()
    })
    app.addHook('onError', (request, _reply, error, done) => {
      request.otelSpan?.recordException(error)
      done()
    })
    // An aborted request gets no onResponse: end its span here (no duration sample, no status code).
    app.addHook('onRequestAbort', (request, done) => {
      endSpan(request, {}, 'client aborted the request')
      done()
    })
  }
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url
    const status = reply.statusCode
    const attributes: Attributes = {
      'http.request.method': request.method,
      'http.response.status_code': status,
    }
    if (route !== undefined) attributes['http.route'] = route
    // The span takes the same object: neither side mutates it.
    backlog.record(instruments.httpDuration, reply.elapsedTime / 1000, attributes)
    endSpan(request, attributes, status >= 500 ? `HTTP ${status}` : null)
    done()
  })
}
