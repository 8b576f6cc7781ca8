// Subscribes telemetry to the domain events (core/events.ts): future spans from queued to done,
// and the metrics services announce (usage, queues, adapters, store latency).

import { type Attributes, ROOT_CONTEXT, SpanKind, SpanStatusCode } from '@opentelemetry/api'
import type { EventBus, TuftEvents, UsageKind } from '../../core/events.js'
import { ATTR } from './attributes.js'
import type { Telemetry } from './sdk.js'
import { asContext, traceAttributes } from './trace-context.js'

type Listener<K extends keyof TuftEvents> = (...args: TuftEvents[K]) => void

/** Starts observing; the returned function stops (used when the app closes). */
export function observeEvents(bus: EventBus, telemetry: Telemetry): () => void {
  const { instruments: m, tracer, futures, backlog } = telemetry
  const off: (() => void)[] = []
  const on = <K extends keyof TuftEvents>(event: K, listener: Listener<K>): void => {
    // EventEmitter's typing of generic keys is too loose to accept the listener as is.
    bus.on(event as 'usage', listener as unknown as Listener<'usage'>)
    off.push(() => bus.off(event as 'usage', listener as unknown as Listener<'usage'>))
  }

  const counters: Record<Exclude<UsageKind, 'checkpoint_bytes'>, typeof m.trainingTokens> = {
    training_tokens: m.trainingTokens,
    prefill_tokens: m.prefillTokens,
    sampled_tokens: m.sampledTokens,
  }
  on('usage', ({ userId, modelName, kind, amount }) => {
    const attributes = { [ATTR.userId]: userId, [ATTR.model]: modelName }
    if (kind === 'checkpoint_bytes') m.checkpointBytes.add(amount, attributes)
    else if (amount > 0) counters[kind].add(amount, attributes)
  })
  on('queue.depth', ({ modelName, kind, depth }) => {
    backlog.record(m.queueDepth, depth, { [ATTR.model]: modelName, [ATTR.queue]: kind })
  })
  on('adapters.resident', ({ modelName, count }) => {
    m.adaptersResident.record(count, { [ATTR.model]: modelName })
  })
  on('store.op', ({ store, op, ms }) => {
    const key = `${store}\u0000${op}`
    const series =
      m.storeDuration.series(key) ??
      m.storeDuration.addSeries(key, { [ATTR.store]: store, [ATTR.storeOp]: op })
    m.storeDuration.record(series, ms / 1000)
  })
  on('future.running', ({ trace, kind, modelName, waitedMs }) => {
    backlog.record(m.queueWait, waitedMs / 1000, { [ATTR.model]: modelName, [ATTR.futureKind]: kind })
    futures.span(trace.requestId)?.addEvent('running', { waited_ms: waitedMs })
  })
  on('future.done', ({ trace, kind, modelName, ok, error, totalMs }) => {
    const outcome = ok ? 'ok' : 'error'
    backlog.record(m.futureDuration, totalMs / 1000, {
      [ATTR.model]: modelName,
      [ATTR.futureKind]: kind,
      [ATTR.outcome]: outcome,
    })
    futures.end(
      trace.requestId,
      ok ? { code: SpanStatusCode.OK } : { code: SpanStatusCode.ERROR, message: error ?? 'failed' },
    )
  })
  if (tracer !== null) {
    on('future.queued', ({ trace, kind, modelName }) => {
      // The request span (its context handed down by the route) parents the future; work no request
      // caused (recovery, relays) starts its own trace.
      const parent = asContext(trace.otelContext) ?? ROOT_CONTEXT
      const attributes: Attributes = {
        ...traceAttributes(trace),
        [ATTR.model]: modelName,
        [ATTR.futureKind]: kind,
      }
      const span = tracer.startSpan(`future ${kind}`, { kind: SpanKind.INTERNAL, attributes }, parent)
      futures.add(trace.requestId, span, parent)
    })
  }
  return () => {
    for (const stop of off) stop()
  }
}
