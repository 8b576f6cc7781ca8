// One telemetry instance per app: tracer, meter and OTel logger providers built from the config,
// their exporters (OTLP over HTTP/protobuf or gRPC, console under TUFT_OTEL_DEBUG=1, a Prometheus
// scrape reader), and a shutdown that flushes everything. Nothing is registered globally: trace context
// travels explicitly (request → RequestTrace.otelContext → future span → engine span), since an
// async-hooks context manager would tax every promise in the process (~0.2 µs each on Node 20).

import { randomUUID } from 'node:crypto'
import type { Tracer } from '@opentelemetry/api'
import type { Logger as OtelLogger } from '@opentelemetry/api-logs'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  BatchLogRecordProcessor,
  ConsoleLogRecordExporter,
  LoggerProvider,
  type LogRecordExporter,
  type LogRecordProcessor,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs'
import {
  ConsoleMetricExporter,
  MeterProvider,
  type MetricReader,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import type { TelemetryConfig } from '../../config/schema.js'
import { tuftError } from '../../core/errors.js'
import { Backlog } from './backlog.js'
import { HotHistograms } from './hot-histograms.js'
import { Instruments } from './instruments.js'
import { OtlpHttpSpanExporter, otlpGrpcSpanExporter } from './otlp-span-exporter.js'
import { ScrapeReader } from './prometheus.js'
import { RequestSpans } from './request-span.js'
import { type OtlpProtocol, resolveExport } from './settings.js'
import { FutureSpans } from './trace-context.js'

const SCOPE = 'tuft'
/** OTLP metric push interval; dashboards of training runs want better than the 60 s default. */
const METRIC_EXPORT_INTERVAL_MS = 15_000

export interface TelemetryOptions {
  env?: NodeJS.ProcessEnv
  /**
   * Exporters chosen by the caller (tests, embedding). When given they replace the configured ones
   * entirely: no OTLP and no console exporter is started. Spans and log records are exported as they
   * end; metrics every `metricExportIntervalMs` and on forceFlush.
   */
  exporters?: { spans?: SpanExporter; logs?: LogRecordExporter; metrics?: PushMetricExporter }
  metricExportIntervalMs?: number
}

interface Exporters {
  spans: SpanExporter
  metrics: PushMetricExporter
  logs: LogRecordExporter
}

export class Telemetry {
  readonly settings: TelemetryConfig
  /** null when only metrics are on (prometheus without `enabled`). */
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
  readonly #tracerProvider: BasicTracerProvider | null
  readonly #meterProvider: MeterProvider
  readonly #loggerProvider: LoggerProvider | null
  #closed: Promise<void> | null = null

  constructor(parts: {
    settings: TelemetryConfig
    tracerProvider: BasicTracerProvider | null
    requestSpans: RequestSpans | null
    meterProvider: MeterProvider
    hot: HotHistograms
    loggerProvider: LoggerProvider | null
    scrape: ScrapeReader | null
  }) {
    this.settings = parts.settings
    this.#tracerProvider = parts.tracerProvider
    this.#meterProvider = parts.meterProvider
    this.#loggerProvider = parts.loggerProvider
    this.scrape = parts.scrape
    this.tracer = parts.tracerProvider?.getTracer(SCOPE) ?? null
    this.requestSpans = parts.requestSpans
    this.otelLogger = parts.loggerProvider?.getLogger(SCOPE) ?? null
    this.instruments = new Instruments(parts.meterProvider.getMeter(SCOPE), parts.hot, () =>
      this.backlog.drain(),
    )
  }

  /** Pushes everything buffered to the exporters (tests; before a planned stop). */
  async forceFlush(): Promise<void> {
    this.backlog.drain()
    await Promise.all([
      this.#tracerProvider?.forceFlush(),
      this.#meterProvider.forceFlush(),
      this.#loggerProvider?.forceFlush(),
    ])
  }

  /** Flushes and stops every provider; safe to call more than once. */
  shutdown(): Promise<void> {
    if (this.#closed === null) {
      this.futures.endAll()
      this.backlog.drain()
    }
    this.#closed ??= Promise.all([
      this.#tracerProvider?.shutdown(),
      this.#meterProvider.shutdown(),
      this.#loggerProvider?.shutdown(),
    ]).then(() => undefined)
    return this.#closed
  }
}

/**
 * Starts telemetry as configured, or returns null when neither `enabled` nor `prometheus.enabled` is
 * set: then no provider, exporter or hook exists at all.
 */
export async function createTelemetry(
  settings: TelemetryConfig,
  options: TelemetryOptions = {},
): Promise<Telemetry | null> {
  if (!settings.enabled && !settings.prometheus.enabled) return null
  const resource = resourceFromAttributes({
    'service.instance.id': randomUUID(),
    ...settings.resource_attributes,
    [ATTR_SERVICE_NAME]: settings.service_name,
  })
  // Every reader also collects the histograms TuFT aggregates itself.
  const hot = new HotHistograms(resource, { name: SCOPE })
  const metricProducers = [hot]
  const scrape = settings.prometheus.enabled ? new ScrapeReader(metricProducers) : null
  const injected = options.exporters
  const interval = options.metricExportIntervalMs ?? METRIC_EXPORT_INTERVAL_MS
  const readers: MetricReader[] = []
  if (injected?.metrics !== undefined)
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: injected.metrics,
        exportIntervalMillis: interval,
        metricProducers,
      }),
    )
  if (!settings.enabled) {
    if (scrape !== null) readers.push(scrape)
    return new Telemetry({
      settings,
      tracerProvider: null,
      requestSpans: null,
      meterProvider: new MeterProvider({ resource, readers }),
      hot,
      loggerProvider: null,
      scrape,
    })
  }

  let shared = false
  const spanProcessors: SpanProcessor[] = []
  const logProcessors: LogRecordProcessor[] = []
  if (injected !== undefined) {
    if (injected.spans !== undefined) spanProcessors.push(new SimpleSpanProcessor(injected.spans))
    if (injected.logs !== undefined)
      logProcessors.push(new SimpleLogRecordProcessor({ exporter: injected.logs }))
  } else {
    const plan = resolveExport(settings, options.env ?? process.env)
    if (plan.endpoint !== null) {
      const otlp = await otlpExporters(plan.endpoint, plan.protocol)
      spanProcessors.push(new BatchSpanProcessor(otlp.spans))
      logProcessors.push(new BatchLogRecordProcessor({ exporter: otlp.logs }))
      const push = new PeriodicExportingMetricReader({
        exporter: otlp.metrics,
        exportIntervalMillis: interval,
        metricProducers,
      })
      readers.push(push)
      // One reader for both: the scrape collects through the OTLP one (see ScrapeReader.shareWith).
      if (scrape?.shareWith(push)) shared = true
    }
    if (plan.console) {
      spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()))
      logProcessors.push(new SimpleLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() }))
      const exporter = new ConsoleMetricExporter()
      readers.push(
        new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, metricProducers }),
      )
    }
  }

  if (scrape !== null && !shared) readers.push(scrape)
  // Children follow their parent (a request's futures and engine calls are all in its trace or none).
  const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.trace_sample_ratio) })
  return new Telemetry({
    settings,
    tracerProvider: new BasicTracerProvider({ resource, spanProcessors, sampler }),
    // The tracer's scope, resource and sampler, so request spans are exported and sampled like the rest.
    requestSpans: new RequestSpans(
      resource,
      { name: SCOPE },
      spanProcessors,
      settings.trace_sample_ratio < 1 ? sampler : null,
    ),
    meterProvider: new MeterProvider({ resource, readers }),
    hot,
    loggerProvider: new LoggerProvider({ resource, processors: logProcessors }),
    scrape,
  })
}

/** OTLP exporters for the configured protocol; the gRPC stack is only loaded when chosen. */
async function otlpExporters(endpoint: string, protocol: OtlpProtocol): Promise<Exporters> {
  try {
    if (protocol === 'grpc') {
      const [spans, metrics, logs] = await Promise.all([
        otlpGrpcSpanExporter(endpoint),
        import('@opentelemetry/exporter-metrics-otlp-grpc'),
        import('@opentelemetry/exporter-logs-otlp-grpc'),
      ])
      return {
        spans,
        metrics: new metrics.OTLPMetricExporter({ url: endpoint }),
        logs: new logs.OTLPLogExporter({ url: endpoint }),
      }
    }
    const [metrics, logs] = await Promise.all([
      import('@opentelemetry/exporter-metrics-otlp-proto'),
      import('@opentelemetry/exporter-logs-otlp-proto'),
    ])
    return {
      spans: new OtlpHttpSpanExporter(endpoint),
      metrics: new metrics.OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
      logs: new logs.OTLPLogExporter({ url: `${endpoint}/v1/logs` }),
    }
  } catch (cause) {
    throw tuftError('TUFT_CONFIG', `telemetry: cannot start the OTLP ${protocol} exporters`, { cause })
  }
}
