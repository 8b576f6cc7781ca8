// OpenTelemetry started through NodeSDK with the pieces TuFT built (resource, sampler, span and log
// processors, metric readers): NodeSDK makes the three providers and registers them with the
// OpenTelemetry API, where TuFT takes its tracer, meter and logger, so third-party code using the API
// (an engine package, say) reports into the same pipelines. Only what the API requires is global, and
// only until shutdown, which unregisters it again so that a later app of the same process (tests,
// embedding) can start its own. Neither an async context manager (it would tax every promise of the
// process: trace context travels explicitly) nor a global propagator (traceparent is read by http.ts)
// is registered.

import {
  type ContextManager,
  type Meter,
  metrics,
  ProxyTracerProvider,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import { logs, type Logger as OtelLogger } from '@opentelemetry/api-logs'
import type { Resource } from '@opentelemetry/resources'
import type { LogRecordProcessor } from '@opentelemetry/sdk-logs'
import type { MetricReader } from '@opentelemetry/sdk-metrics'
import { NodeSDK } from '@opentelemetry/sdk-node'
import type { Sampler, SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { tuftError } from '../../core/errors.js'

export interface SdkParts {
  resource: Resource
  sampler: Sampler
  /** None: no tracer provider. */
  spanProcessors: SpanProcessor[]
  /** None: no meter provider (the meter is the API's no-op one). */
  metricReaders: MetricReader[]
  /** None: a logger provider without processors (NodeSDK would otherwise pick exporters itself). */
  logProcessors: LogRecordProcessor[]
}

export interface StartedSdk {
  /** null without span processors. */
  tracer: Tracer | null
  meter: Meter
  /** null without log processors. */
  logger: OtelLogger | null
  /** Flushes every processor and reader. */
  forceFlush(): Promise<void>
  /** Flushes and stops every provider, then unregisters them from the API. */
  shutdown(): Promise<void>
}

/** What the API hands out now: a change across `start()` shows that NodeSDK's registration took. */
function registered(): { tracer: TracerProvider; meter: unknown; logger: unknown } {
  const tracer = trace.getTracerProvider()
  return {
    tracer: tracer instanceof ProxyTracerProvider ? tracer.getDelegate() : tracer,
    meter: metrics.getMeterProvider(),
    logger: logs.getLoggerProvider(),
  }
}

export async function startSdk(parts: SdkParts, scope: string): Promise<StartedSdk> {
  const before = registered()
  const sdk = new NodeSDK({
    // The resource is settings.ts's (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES included), not detected.
    autoDetectResources: false,
    resource: parts.resource,
    sampler: parts.sampler,
    spanProcessors: parts.spanProcessors,
    metricReaders: parts.metricReaders,
    logRecordProcessors: parts.logProcessors,
    // null: register none (NodeSDK's own reading of the option; its type only names a manager).
    contextManager: null as unknown as ContextManager,
    textMapPropagator: null,
  })
  sdk.start()
  const after = registered()
  const took = {
    trace: after.tracer !== before.tracer,
    metrics: after.meter !== before.meter,
    logs: after.logger !== before.logger,
  }
  const release = () => {
    if (took.trace) trace.disable()
    if (took.metrics) metrics.disable()
    if (took.logs) logs.disable()
  }
  const wanted = { trace: parts.spanProcessors.length > 0, metrics: parts.metricReaders.length > 0 }
  if ((wanted.trace && !took.trace) || (wanted.metrics && !took.metrics) || !took.logs) {
    // Nothing was exported yet: the registration conflict is the error to report, not a failed stop.
    await sdk.shutdown().catch(() => undefined)
    release()
    throw tuftError(
      'TUFT_CONFIG',
      'telemetry: OpenTelemetry is already registered in this process (an SDK preloaded with --require/--import, ' +
        'or another TuFT app still open); TuFT sets up its own',
    )
  }
  const flushables = [...parts.spanProcessors, ...parts.metricReaders, ...parts.logProcessors]
  return {
    tracer: wanted.trace ? trace.getTracer(scope) : null,
    meter: metrics.getMeter(scope),
    logger: parts.logProcessors.length > 0 ? logs.getLogger(scope) : null,
    forceFlush: async () => {
      await Promise.all(flushables.map((f) => f.forceFlush()))
    },
    shutdown: () => sdk.shutdown().finally(release),
  }
}
