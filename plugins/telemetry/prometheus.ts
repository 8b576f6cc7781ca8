// Prometheus text exposition on demand: a pull MetricReader collected at scrape time, so the
// scrape is served on the app's own port (plugins/telemetry) instead of a second listener. When an
// OTLP push reader with cumulative temporality exists, the scrape collects through that one instead
// of being a reader of its own: every reader keeps its own copy of every series, so a second one
// doubles the cost of each measurement (the SDK hashes the attributes once per reader).

import { diag } from '@opentelemetry/api'
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import {
  AggregationTemporality,
  InstrumentType,
  type MetricProducer,
  MetricReader,
} from '@opentelemetry/sdk-metrics'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export class ScrapeReader extends MetricReader {
  readonly #serializer = new PrometheusSerializer()
  #source: MetricReader | null = null

  /** `metricProducers`: sources besides the SDK's instruments (used when this reader collects itself). */
  constructor(metricProducers: MetricProducer[] = []) {
    super({ metricProducers })
  }

  /**
   * Collects through `reader` (registered with the MeterProvider in place of this one) if it reports
   * every instrument cumulatively, as Prometheus does; returns whether it will.
   */
  shareWith(reader: MetricReader): boolean {
    const cumulative = Object.values(InstrumentType).every(
      (type) => reader.selectAggregationTemporality(type) === AggregationTemporality.CUMULATIVE,
    )
    if (cumulative) this.#source = reader
    return cumulative
  }

  /** Collects every instrument now and renders the Prometheus text format. */
  async scrape(): Promise<string> {
    const { resourceMetrics, errors } = await (this.#source ?? this).collect()
    if (errors.length > 0) diag.error('tuft: metric collection errors during a Prometheus scrape', ...errors)
    return this.#serializer.serialize(resourceMetrics)
  }

  // Pull-only: there is nothing buffered to flush or to stop.
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}
