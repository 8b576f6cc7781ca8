// HotHistogram must aggregate exactly as an SDK histogram with the same boundaries would: the same
// bucket counts (upper bounds inclusive), count, sum, min and max per attribute set.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { resourceFromAttributes } from '@opentelemetry/resources'
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { HotHistograms } from '../plugins/telemetry/hot-histograms.js'

const BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 1]
const SAMPLES: [string, number][] = [
  ['GET', 0.005], // on a boundary: counted in the bucket it closes
  ['GET', 0.0051],
  ['GET', 0],
  ['POST', 0.3],
  ['POST', 7],
  ['GET', 0.05],
  ['POST', 0.01],
  ['GET', Number.NaN], // dropped, as the SDK drops it
]

test('HotHistogram aggregates like the SDK histogram', async () => {
  const hot = new HotHistograms(resourceFromAttributes({}), { name: 'tuft' })
  const h = hot.create('d', 'duration', 's', BOUNDARIES)
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  const sdk = provider
    .getMeter('ref')
    .createHistogram('d', { advice: { explicitBucketBoundaries: BOUNDARIES } })
  for (const [method, value] of SAMPLES) {
    h.record(h.series(method) ?? h.addSeries(method, { method }), value)
    sdk.record(value, { method })
  }
  await reader.forceFlush()
  const expected = exporter.getMetrics()[0]!.scopeMetrics[0]!.metrics[0]!
  const actual = (await hot.collect()).resourceMetrics.scopeMetrics[0]!.metrics[0]!
  const points = (m: typeof actual) =>
    Object.fromEntries(m.dataPoints.map((p) => [(p.attributes as { method: string }).method, p.value]))
  assert.deepEqual(points(actual), points(expected))
  assert.equal(actual.dataPointType, expected.dataPointType)
  assert.equal(actual.aggregationTemporality, AggregationTemporality.CUMULATIVE)
  await provider.shutdown()
})

test('a histogram without samples is not reported', async () => {
  const hot = new HotHistograms(resourceFromAttributes({}), { name: 'tuft' })
  hot.create('empty', '', 's', BOUNDARIES)
  assert.deepEqual((await hot.collect()).resourceMetrics.scopeMetrics[0]!.metrics, [])
})
