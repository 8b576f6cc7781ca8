// One telemetry instance per app: OpenTelemetry set up through NodeSDK (node-sdk.ts) from what
// settings.ts decided (config, TUFT_* and OTEL_* variables), with TuFT's per-request fast paths plugged
// into it — request spans handed to the tracer's span processors, the hot histograms collected by
// every metric reader, the one-pass span serializer inside the OTLP trace exporters — and a shutdown
// that flushes every signal. Trace context travels explicitly (request → RequestTrace.otelContext →
// future span → engine span): an async-hooks context manager would tax every promise in the process.

import type { Tracer } from '@opentelemetry/api'
import type { Logger as OtelLogger } from '@opentelemetry/api-logs'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  type LogRecordExporter,
  type LogRecordProcessor,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs'
import {
  type MetricReader,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base'
import type { TelemetryConfig } from '../../config/schema.js'
import { Backlog } from './backlog.js'
import { exportPipelines } from './exporters.js'
import { HotHistograms } from './hot-histograms.js'
import { Instruments } from './instruments.js'
import { type StartedSdk, startSdk } from './node-sdk.js'
import { ScrapeReader } from './prometheus.js'
import { RequestSpans } from './request-span.js'
import {
  metricExportInterval,
  resolveExports,
  resolveResource,
  resolveSampler,
  type SamplerChoice,
  sdkDisabled,
} from './settings.js'
import { FutureSpans } from './trace-context.js'

const SCOPE = 'tuft'

export interface TelemetryOptions {
  /** The environment settings.ts reads (default process.env; the OTLP exporters read process.env). */
  env?: NodeJS.ProcessEnv
  /**
   * Exporters chosen by the caller (tests, embedding). When given they replace the configured ones
   * entirely: no OTLP and no console exporter is started. Spans and log records are exported as they
   * end; metrics every `metricExportIntervalMs` and on forceFlush.
   */
  exporters?: { spans?: SpanExporter; logs?: LogRecordExporter; metrics?: PushMetricExporter }
  metricExportIntervalMs?: number
}

export class Telemetry {
  readonly settings: TelemetryConfig
  /** null when not tracing (prometheus without `enabled`, or no span exporter). */
  readonly tracer: Tracer | null
  /** HTTP request spans, exported through the tracer's span processors; null when not tracing. */
  readonly requestSpans: RequestSpans | null
  readonly otelLogger: OtelLogger | null
  readonly instruments: Instruments
  /** The Prometheus reader when the scrape endpoint is on. */
  readonly scrape: ScrapeReader | null
  /** Open future spans, by request id (only filled when tracing). */
  readonly futures = new FutureSpans()
  /** Histogram samples and log records queued off the request path; drained before every collection. */
  readonly backlog = new Backlog()
  readonly #sdk: StartedSdk
  #closed: Promise<void> | null = null

  constructor(parts: {
    settings: TelemetryConfig
    sdk: StartedSdk
    requestSpans: RequestSpans | null
    hot: HotHistograms
    scrape: ScrapeReader | null
  }) {
    this.settings = parts.settings
    this.#sdk = parts.sdk
    this.scrape = parts.scrape
    this.tracer = parts.sdk.tracer
    this.requestSpans = parts.requestSpans
    this.otelLogger = parts.sdk.logger
    this.instruments = new Instruments(parts.sdk.meter, parts.hot, () => this.backlog.drain())
  }

  /** Pushes everything buffered to the exporters (tests; before a planned stop). */
  async forceFlush(): Promise<void> {
    this.backlog.drain()
    await this.#sdk.forceFlush()
  }

  /** Flushes and stops every provider; safe to call more than once. */
  shutdown(): Promise<void> {
    if (this.#closed === null) {
      this.futures.endAll()
      this.backlog.drain()
    }
    this.#closed ??= this.#sdk.shutdown()
    return this.#closed
  }
}

/**
 * Starts telemetry as configured, or returns null when neither `enabled` nor `prometheus.enabled` is
 * set, or OTEL_SDK_DISABLED=true: then no provider, exporter or hook exists at all.
 */
export async function createTelemetry(
  settings: TelemetryConfig,
  options: TelemetryOptions = {},
): Promise<Telemetry | null> {
  if (!settings.enabled && !settings.prometheus.enabled) return null
  const env = options.env ?? process.env
  if (sdkDisabled(env)) return null
  const resource = defaultResource().merge(resourceFromAttributes(resolveResource(settings, env)))
  // Every reader also collects the histograms TuFT aggregates itself.
  const hot = new HotHistograms(resource, { name: SCOPE })
  const producers = [hot]
  const scrape = settings.prometheus.enabled ? new ScrapeReader(producers) : null
  const intervalMs = options.metricExportIntervalMs ?? metricExportInterval(env)
  const choice = resolveSampler(settings, env)
  const sampler = createSampler(choice)

  const spanProcessors: SpanProcessor[] = []
  const metricReaders: MetricReader[] = []
  const logProcessors: LogRecordProcessor[] = []
  let otlpMetricReader: MetricReader | null = null
  const injected = options.exporters
  if (injected !== undefined) {
    if (injected.spans !== undefined) spanProcessors.push(new SimpleSpanProcessor(injected.spans))
    if (injected.logs !== undefined)
      logProcessors.push(new SimpleLogRecordProcessor({ exporter: injected.logs }))
    if (injected.metrics !== undefined)
      metricReaders.push(
        new PeriodicExportingMetricReader({
          exporter: injected.metrics,
          exportIntervalMillis: intervalMs,
          metricProducers: producers,
        }),
      )
  } else if (settings.enabled) {
    const pipelines = await exportPipelines(resolveExports(settings, env), { intervalMs, producers })
    spanProcessors.push(...pipelines.spanProcessors)
    metricReaders.push(...pipelines.metricReaders)
    logProcessors.push(...pipelines.logProcessors)
    otlpMetricReader = pipelines.otlpMetricReader
  }
  // One reader for both when it can: the scrape collects through the OTLP one (ScrapeReader.shareWith).
  if (scrape !== null && !(otlpMetricReader !== null && scrape.shareWith(otlpMetricReader)))
    metricReaders.push(scrape)
  // Metrics only (prometheus without `enabled`): no tracer, no log export.
  const sdk = await startSdk(
    {
      resource,
      sampler,
      spanProcessors: settings.enabled ? spanProcessors : [],
      metricReaders,
      logProcessors: settings.enabled ? logProcessors : [],
    },
    SCOPE,
  )
  return new Telemetry({
    settings,
    sdk,
    // The tracer's scope, resource and sampler, so request spans are exported and sampled like the rest.
    requestSpans:
      sdk.tracer === null
        ? null
        : new RequestSpans(
            resource,
            { name: SCOPE },
            spanProcessors,
            keepsEveryTrace(choice) ? null : sampler,
          ),
    hot,
    scrape,
  })
}

function createSampler({ name, ratio }: SamplerChoice): Sampler {
  const root = name.endsWith('always_on')
    ? new AlwaysOnSampler()
    : name.endsWith('always_off')
      ? new AlwaysOffSampler()
      : new TraceIdRatioBasedSampler(ratio)
  return name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root
}

/** Parent-based and sampling every new trace: what a request span does without asking the sampler. */
function keepsEveryTrace({ name, ratio }: SamplerChoice): boolean {
  return name === 'parentbased_always_on' || (name === 'parentbased_traceidratio' && ratio >= 1)
}
