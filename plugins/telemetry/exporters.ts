// The exporters of each signal as settings.ts planned them, wrapped in their processor or reader:
// OTLP (traces encoded by the one-pass serializer for http/protobuf and gRPC, the official JSON exporter
// for http/json) and the console. Each protocol's stack is imported only when chosen.

import type { LogRecordExporter, LogRecordProcessor } from '@opentelemetry/sdk-logs'
import {
  BatchLogRecordProcessor,
  ConsoleLogRecordExporter,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs'
import {
  ConsoleMetricExporter,
  type MetricProducer,
  type MetricReader,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics'
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { tuftError } from '../../core/errors.js'
import { OtlpHttpSpanExporter, otlpGrpcSpanExporter } from './otlp-span-exporter.js'
import type { OtlpProtocol, Signal, SignalExport } from './settings.js'

export interface ExportPipelines {
  spanProcessors: SpanProcessor[]
  /** Push readers; `otlp` is the OTLP one, which a Prometheus scrape may collect through. */
  metricReaders: MetricReader[]
  otlpMetricReader: MetricReader | null
  logProcessors: LogRecordProcessor[]
}

/** Console exporters export as records end (SimpleProcessor); OTLP ones in batches. */
export async function exportPipelines(
  plan: Record<Signal, SignalExport>,
  metrics: { intervalMs: number; producers: MetricProducer[] },
): Promise<ExportPipelines> {
  const reader = (exporter: PushMetricExporter) =>
    new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: metrics.intervalMs,
      metricProducers: metrics.producers,
    })
  const { traces, metrics: metric, logs } = plan
  const out: ExportPipelines = {
    spanProcessors: [],
    metricReaders: [],
    otlpMetricReader: null,
    logProcessors: [],
  }
  if (traces.otlp !== null)
    out.spanProcessors.push(new BatchSpanProcessor(await otlp(spanExporter, traces.otlp, 'traces')))
  if (traces.console) out.spanProcessors.push(new SimpleSpanProcessor(new ConsoleSpanExporter()))
  if (metric.otlp !== null) {
    out.otlpMetricReader = reader(await otlp(metricExporter, metric.otlp, 'metrics'))
    out.metricReaders.push(out.otlpMetricReader)
  }
  if (metric.console) out.metricReaders.push(reader(new ConsoleMetricExporter()))
  if (logs.otlp !== null)
    out.logProcessors.push(
      new BatchLogRecordProcessor({ exporter: await otlp(logExporter, logs.otlp, 'logs') }),
    )
  if (logs.console)
    out.logProcessors.push(new SimpleLogRecordProcessor({ exporter: new ConsoleLogRecordExporter() }))
  return out
}

interface Destination {
  url: string
  protocol: OtlpProtocol
}

async function otlp<T>(
  create: (d: Destination) => Promise<T>,
  destination: Destination,
  signal: Signal,
): Promise<T> {
  try {
    return await create(destination)
  } catch (cause) {
    const what = `the OTLP ${destination.protocol} ${signal} exporter for ${destination.url}`
    throw tuftError('TUFT_CONFIG', `telemetry: cannot start ${what}`, { cause })
  }
}

async function spanExporter({ url, protocol }: Destination): Promise<SpanExporter> {
  if (protocol === 'http/protobuf') return new OtlpHttpSpanExporter(url)
  if (protocol === 'grpc') return otlpGrpcSpanExporter(url)
  return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter({ url })
}

async function metricExporter({ url, protocol }: Destination): Promise<PushMetricExporter> {
  const module =
    protocol === 'grpc'
      ? await import('@opentelemetry/exporter-metrics-otlp-grpc')
      : protocol === 'http/json'
        ? await import('@opentelemetry/exporter-metrics-otlp-http')
        : await import('@opentelemetry/exporter-metrics-otlp-proto')
  return new module.OTLPMetricExporter({ url })
}

async function logExporter({ url, protocol }: Destination): Promise<LogRecordExporter> {
  const module =
    protocol === 'grpc'
      ? await import('@opentelemetry/exporter-logs-otlp-grpc')
      : protocol === 'http/json'
        ? await import('@opentelemetry/exporter-logs-otlp-http')
        : await import('@opentelemetry/exporter-logs-otlp-proto')
  return new module.OTLPLogExporter({ url })
}
