// Telemetry set up through NodeSDK: the providers are registered with the OpenTelemetry API while the
// app is open (so code using the API reports into TuFT's pipelines) and unregistered at shutdown; no
// async context manager is registered; a second instance while one is open is refused.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { context, createContextKey, metrics, ROOT_CONTEXT, trace } from '@opentelemetry/api'
import { logs } from '@opentelemetry/api-logs'
import { InMemoryLogRecordExporter } from '@opentelemetry/sdk-logs'
import { AggregationTemporality, InMemoryMetricExporter } from '@opentelemetry/sdk-metrics'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { isTuftError } from '../core/errors.js'
import { createTelemetry } from '../plugins/telemetry/sdk.js'
import { telemetryConfig } from './telemetry-harness.js'

describe('NodeSDK registration', () => {
  test('the API hands out TuFT’s providers until shutdown; no context manager; one instance at a time', async () => {
    const spans = new InMemorySpanExporter()
    const logExporter = new InMemoryLogRecordExporter()
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
    const exporters = { spans, logs: logExporter, metrics: metricExporter }
    const telemetry = await createTelemetry(telemetryConfig(), {
      exporters,
      metricExportIntervalMs: 3_600_000,
    })
    assert.ok(telemetry)
    try {
      trace.getTracer('third-party').startSpan('from the API').end()
      metrics.getMeter('third-party').createCounter('api.counter').add(3)
      logs.getLogger('third-party').emit({ body: 'from the API' })
      await telemetry.forceFlush()
      const [span] = spans.getFinishedSpans()
      assert.equal(span?.name, 'from the API')
      assert.equal(span?.resource.attributes['service.name'], 'tuft-test')
      assert.equal(logExporter.getFinishedLogRecords()[0]?.body, 'from the API')
      const names = metricExporter
        .getMetrics()
        .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)))
      assert.ok(names.includes('api.counter'))

      const key = createContextKey('probe')
      const seen = context.with(ROOT_CONTEXT.setValue(key, 1), () => context.active().getValue(key))
      assert.equal(seen, undefined, 'no context manager: context does not travel implicitly')

      await assert.rejects(
        createTelemetry(telemetryConfig(), { exporters }),
        (err) => isTuftError(err) && err.code === 'TUFT_CONFIG' && /already registered/.test(err.message),
      )
    } finally {
      await telemetry.shutdown()
    }
    assert.equal(trace.getTracer('third-party').startSpan('after').isRecording(), false, 'unregistered')

    const again = await createTelemetry(telemetryConfig(), { exporters: { spans } })
    assert.ok(again, 'a later instance registers its own')
    await again.shutdown()
  })
})
