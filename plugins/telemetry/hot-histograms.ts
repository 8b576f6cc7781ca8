// Histograms recorded on every request (HTTP duration, store latency), aggregated here rather than by
// SDK instruments: an SDK instrument hashes each sample's attributes (sort the keys, JSON-encode
// them) to find its series, which cost more than all the rest of a request's metrics. Here the caller
// names the series by a string it already has, and the attributes are built once per series (no
// closure per sample either: function objects made per request are costly under tsx). The
// SDK's metric readers collect these through the MetricProducer interface, as cumulative histograms.

import { type Attributes, type HrTime, ValueType } from '@opentelemetry/api'
import { hrTime, type InstrumentationScope } from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import {
  AggregationTemporality,
  type CollectionResult,
  DataPointType,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics'

export interface Series {
  readonly attributes: Attributes
  readonly startTime: HrTime
  /** counts[i]: samples in (boundaries[i-1], boundaries[i]]; the last one is above every boundary. */
  readonly counts: number[]
  count: number
  sum: number
  min: number
  max: number
}

export class HotHistogram {
  readonly name: string
  readonly description: string
  readonly unit: string
  readonly boundaries: readonly number[]
  readonly #series = new Map<string, Series>()

  constructor(name: string, description: string, unit: string, boundaries: readonly number[]) {
    this.name = name
    this.description = description
    this.unit = unit
    this.boundaries = boundaries
  }

  /** The series `key`, if it has a sample yet. */
  series(key: string): Series | undefined {
    return this.#series.get(key)
  }

  /** Starts the series `key` with these attributes (once per series: see `series`). */
  addSeries(key: string, attributes: Attributes): Series {
    const series: Series = {
      attributes,
      startTime: hrTime(),
      counts: new Array<number>(this.boundaries.length + 1).fill(0),
      count: 0,
      sum: 0,
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
    }
    this.#series.set(key, series)
    return series
  }

  /** Adds a sample to a series of this histogram. */
  record(series: Series, value: number): void {
    if (!Number.isFinite(value)) return
    let bucket = 0
    while (bucket < this.boundaries.length && value > this.boundaries[bucket]!) bucket++
    series.counts[bucket]!++
    series.count++
    series.sum += value
    if (value < series.min) series.min = value
    if (value > series.max) series.max = value
  }

  /** The cumulative state as SDK metric data; null before the first sample. */
  snapshot(endTime: HrTime): HistogramMetricData | null {
    if (this.#series.size === 0) return null
    const boundaries = [...this.boundaries]
    return {
      descriptor: {
        name: this.name,
        description: this.description,
        unit: this.unit,
        valueType: ValueType.DOUBLE,
      },
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: [...this.#series.values()].map((s) => ({
        attributes: s.attributes,
        startTime: s.startTime,
        endTime,
        value: {
          buckets: { boundaries, counts: [...s.counts] },
          count: s.count,
          sum: s.sum,
          min: s.min,
          max: s.max,
        },
      })),
    }
  }
}

/** The hot histograms of one telemetry instance, as a producer every metric reader is given. */
export class HotHistograms implements MetricProducer {
  readonly #resource: Resource
  readonly #scope: InstrumentationScope
  readonly #histograms: HotHistogram[] = []

  constructor(resource: Resource, scope: InstrumentationScope) {
    this.#resource = resource
    this.#scope = scope
  }

  create(name: string, description: string, unit: string, boundaries: readonly number[]): HotHistogram {
    const histogram = new HotHistogram(name, description, unit, boundaries)
    this.#histograms.push(histogram)
    return histogram
  }

  async collect(): Promise<CollectionResult> {
    const now = hrTime()
    const metrics = this.#histograms.flatMap((h) => h.snapshot(now) ?? [])
    return {
      resourceMetrics: { resource: this.#resource, scopeMetrics: [{ scope: this.#scope, metrics }] },
      errors: [],
    }
  }
}
