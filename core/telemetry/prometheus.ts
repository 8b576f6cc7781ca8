// Prometheus text exposition on demand: a pull MetricReader collected at scrape time, so the
// scrape is served on the app's own port (plugins/telemetry) instead of a second listener.

import { diag } from '@opentelemetry/api'
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { MetricReader } from '@opentelemetry/sdk-metrics'

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export class ScrapeReader extends MetricReader {
  readonly #serializer = new PrometheusSerializer()

  /** Collects every instrument now and renders the Prometheus text format. */
  async scrape(): Promise<string> {
    const { resourceMetrics, errors } = await this.collect()
    if (errors.length > 0) diag.error('tuft: metric collection errors during a Prometheus scrape', ...errors)
    return this.#serializer.serialize(resourceMetrics)
  }

  // Pull-only: there is nothing buffered to flush or to stop.
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}
