// HTTP server telemetry as Fastify hooks: a SERVER span per request (continuing an incoming W3C
// traceparent), made active for the rest of the request so services' futures and log lines attach to
// it, and the http.server.request.duration histogram. Hooks exist only when telemetry is on.

import {
  type Attributes,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ATTR } from './attributes.js'
import type { Telemetry } from './sdk.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span; null until started, and after it ended. Absent with telemetry off. */
    otelSpan: Span | null
  }
}

/** Who made the request (never the credential); undefined before authentication. */
export type UserOf = (request: FastifyRequest) => string | undefined

const propagator = new W3CTraceContextPropagator()
const headerGetter = {
  get: (carrier: FastifyRequest['headers'], key: string) => carrier[key],
  keys: (carrier: FastifyRequest['headers']) => Object.keys(carrier),
}

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
    app.decorateRequest('otelSpan', null)
    app.addHook('onRequest', (request, _reply, done) => {
      // Most requests carry no trace context: skip the propagator's parsing then.
      const parent =
        request.headers.traceparent === undefined
          ? ROOT_CONTEXT
          : propagator.extract(ROOT_CONTEXT, request.headers, headerGetter)
      const url = request.url
      const query = url.indexOf('?')
      const span = tracer.startSpan(
        request.method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': request.method,
            'url.path': query === -1 ? url : url.slice(0, query),
            'http.request.id': request.id,
          },
        },
        parent,
      )
      request.otelSpan = span
      // Everything after this hook (other hooks, handler, services) runs with the span active.
      context.with(trace.setSpan(parent, span), done)
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
