// Spans that outlive one call: each future's span from queued to done, looked up by request id so
// the engine wrapper can parent (or link) its engine spans to the futures a call serves.

import { type Attributes, type Context, type Span, SpanStatusCode, trace } from '@opentelemetry/api'
import type { RequestTrace } from '../../core/engine.js'
import { ATTR } from './attributes.js'

/** Futures whose `done` never arrives (a crash upstream) are ended once this many are open. */
const MAX_OPEN = 100_000

/** RequestTrace.otelContext is opaque to services; accept it only if it really is a Context. */
export function asContext(value: unknown): Context | undefined {
  return typeof value === 'object' && value !== null && typeof (value as Context).getValue === 'function'
    ? (value as Context)
    : undefined
}

export function traceAttributes(t: RequestTrace): Attributes {
  const attributes: Attributes = { [ATTR.requestId]: t.requestId, [ATTR.userId]: t.userId }
  if (t.sessionId !== undefined) attributes[ATTR.sessionId] = t.sessionId
  if (t.trainingRunId !== undefined) attributes[ATTR.trainingRunId] = t.trainingRunId
  if (t.samplingSessionId !== undefined) attributes[ATTR.samplingSessionId] = t.samplingSessionId
  return attributes
}

export class FutureSpans {
  readonly #open = new Map<string, { span: Span; context: Context }>()

  add(requestId: string, span: Span, parent: Context): void {
    if (this.#open.size >= MAX_OPEN) {
      const oldest = this.#open.keys().next().value
      if (oldest !== undefined) this.end(oldest, { code: SpanStatusCode.ERROR, message: 'abandoned' })
    }
    this.#open.set(requestId, { span, context: trace.setSpan(parent, span) })
  }

  span(requestId: string): Span | undefined {
    return this.#open.get(requestId)?.span
  }

  /** The context engine spans of this request descend from: its future, else the request's own. */
  contextOf(t: RequestTrace): Context | undefined {
    return this.#open.get(t.requestId)?.context ?? asContext(t.otelContext)
  }

  end(requestId: string, status: { code: SpanStatusCode; message?: string }): void {
    const entry = this.#open.get(requestId)
    if (entry === undefined) return
    this.#open.delete(requestId)
    entry.span.setStatus(status)
    entry.span.end()
  }

  /** At shutdown: end what is still open so the exporters flush it. */
  endAll(): void {
    for (const id of [...this.#open.keys()])
      this.end(id, { code: SpanStatusCode.ERROR, message: 'server stopped' })
  }
}
