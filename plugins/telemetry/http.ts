// HTTP server telemetry as Fastify hooks: a SERVER span per request (a RequestSpan, continuing an
// incoming W3C traceparent) and the http.server.request.duration histogram (a HotHistogram); both
// are built for a per-request cost (request-span.ts, hot-histograms.ts). The span starts where
// Fastify creates the request's logger, and that logger is bound to it (logging.ts), so every line it
// writes — Fastify's own "incoming request" included — carries the span's ids. Routes hand the
// request's trace context (`traceContextOf`) to the services, so futures and engine work descend
// from it: no async context manager, which would tax every promise of the process.

import { type Attributes, ROOT_CONTEXT, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest, RawRequestDefaultExpression } from 'fastify'
import { ATTR } from './attributes.js'
import { bindLoggerSpan, loggerSpan } from './logging.js'
import type { Telemetry } from './sdk.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span; null until started, and after it ended. Absent with telemetry off. */
    otelSpan: Span | null
  }
}

/** Who made the request (never the credential); undefined before authentication. */
export type UserOf = (request: FastifyRequest) => string | undefined

/**
 * The trace context to pass with work a request causes (RequestTrace.otelContext, opaque to services);
 * undefined when telemetry is off. Built on demand: most requests cause no work that needs it.
 */
export function traceContextOf(request: FastifyRequest): unknown {
  const span = (request as { otelSpan?: Span | null }).otelSpan
  // The request span replaces any remote parent in the context, so it is set on the root.
  return span ? trace.setSpan(ROOT_CONTEXT, span) : undefined
}

const propagator = new W3CTraceContextPropagator()
const headerGetter = {
  get: (carrier: RawRequestDefaultExpression['headers'], key: string) => carrier[key],
  keys: (carrier: RawRequestDefaultExpression['headers']) => Object.keys(carrier),
}
export function installHttpTelemetry(app: FastifyInstance, telemetry: Telemetry, userOf: UserOf): void {
  const { requestSpans, instruments } = telemetry

  /** Ends the request's span once, with its user; later calls find none. */
  const endSpan = (request: FastifyRequest, error: string | null): void => {
    const span = request.otelSpan
    if (span == null) return
    request.otelSpan = null
    const user = userOf(request)
    if (user !== undefined) span.setAttribute(ATTR.userId, user)
    if (error !== null) span.setStatus({ code: SpanStatusCode.ERROR, message: error })
    span.end()
  }

  if (requestSpans !== null) {
    const start = (raw: RawRequestDefaultExpression, requestId: unknown): Span => {
      // Most requests carry no trace context: skip the propagator's parsing then.
      const parent =
        raw.headers.traceparent === undefined
          ? undefined
          : trace.getSpanContext(propagator.extract(ROOT_CONTEXT, raw.headers, headerGetter))
      const url = raw.url ?? '/'
      const query = url.indexOf('?')
      const method = raw.method ?? 'GET'
      const attributes = {
        'http.request.method': method,
        'url.path': query === -1 ? url : url.slice(0, query),
        'http.request.id': String(requestId),
      }
      return requestSpans.start(method, attributes, parent)
    }
    // The child gets Fastify's usual bindings; the span's ids are added by bindLoggerSpan (see there).
    app.setChildLoggerFactory((logger, bindings, options, raw) => {
      const child = logger.child(bindings, options)
      bindLoggerSpan(child, start(raw, bindings.reqId))
      return child
    })
    app.decorateRequest('otelSpan', null)
    app.addHook('onRequest', (request, _reply, done) => {
      const span = loggerSpan(request.log)
      if (span !== undefined) {
        request.otelSpan = span
      } else {
        // Fastify's 404 path makes its request logger without our factory: start and bind here.
        request.otelSpan = start(request.raw, request.id)
        if (request.log !== app.log) bindLoggerSpan(request.log, request.otelSpan)
      }
      done()
    })
    app.addHook('onError', (request, _reply, error, done) => {
      request.otelSpan?.recordException(error)
      done()
    })
    // An aborted request gets no onResponse: end its span here (no duration sample, no status code).
    app.addHook('onRequestAbort', (request, done) => {
      endSpan(request, 'client aborted the request')
      done()
    })
  }
  const { httpDuration } = instruments
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url
    const method = request.method
    const status = reply.statusCode
    const key = `${method} ${status} ${route}`
    const series =
      httpDuration.series(key) ?? httpDuration.addSeries(key, httpAttributes(method, status, route))
    httpDuration.record(series, reply.elapsedTime / 1000)
    const span = request.otelSpan
    if (span != null) {
      span.setAttribute('http.response.status_code', status)
      if (route !== undefined) {
        span.setAttribute('http.route', route)
        span.updateName(`${method} ${route}`)
      }
      endSpan(request, status >= 500 ? `HTTP ${status}` : null)
    }
    done()
  })
}

function httpAttributes(method: string, status: number, route: string | undefined): Attributes {
  const attributes: Attributes = { 'http.request.method': method, 'http.response.status_code': status }
  if (route !== undefined) attributes['http.route'] = route
  return attributes
}
