// Splitting one forward/forward_backward call into requests (spec §3.1, §3.12) and merging the chunks'
// results back (spec §5.6): outputs concatenated in order, metrics combined by their `:reduction` suffix.

import type { ForwardBackwardOutput } from '../core/wire/fwdbwd-output.js'
import { type Datum, estimateDatumBytes } from './datum.js'

/** Consecutive groups of at most `maxLen` datums and about `maxBytes` bytes; an oversized datum goes alone. */
export function chunkData(data: readonly Datum[], maxLen: number, maxBytes: number): Datum[][] {
  const chunks: Datum[][] = []
  let current: Datum[] = []
  let bytes = 0
  for (const d of data) {
    const size = estimateDatumBytes(d)
    if (current.length && (current.length >= maxLen || bytes + size > maxBytes)) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(d)
    bytes += size
  }
  if (current.length) chunks.push(current)
  return chunks
}

type Reducer = (values: number[], weights: number[]) => number

const weightedMean = (values: number[], weights: number[]) => {
  const total = weights.reduce((a, b) => a + b, 0)
  return total === 0 ? 0 : values.reduce((acc, v, i) => acc + v * weights[i]!, 0) / total
}

const REDUCERS: Record<string, Reducer> = {
  sum: (v) => v.reduce((a, b) => a + b, 0),
  mean: weightedMean,
  min: (v) => Math.min(...v),
  max: (v) => Math.max(...v),
  slack: (v, w) => Math.max(...v) - weightedMean(v, w),
  // Order-insensitive by construction: chunk results may be combined in any order.
  hash_unordered: (v) => v.reduce((a, b) => a + b, 0),
}

/**
 * Merges chunk metrics as the SDK does: every key must be `<name>:<reduction>` with exactly one colon
 * (else an Error, like the SDK's ValueError); `unique` keeps each chunk's value (`key`, `key_1`, ...);
 * unknown reductions and keys missing from some chunk are dropped.
 */
export function mergeMetrics(
  metrics: ReadonlyArray<Readonly<Record<string, number>>>,
  datumCounts: number[],
) {
  const merged: Record<string, number> = {}
  for (const m of metrics) {
    for (const key of Object.keys(m)) {
      if (key.split(':').length !== 2)
        throw new Error(`Metric key '${key}' must look like <name>:<reduction>`)
    }
  }
  const first = metrics[0] ?? {}
  for (const key of Object.keys(first)) {
    if (!metrics.every((m) => key in m)) continue
    const values = metrics.map((m) => m[key]!)
    const reduction = key.slice(key.indexOf(':') + 1)
    if (reduction === 'unique') {
      values.forEach((v, i) => {
        merged[i === 0 ? key : `${key}_${i}`] = v
      })
      continue
    }
    const reduce = REDUCERS[reduction]
    if (reduce) merged[key] = reduce(values, datumCounts)
  }
  return merged
}

export function mergeChunkResults(results: readonly ForwardBackwardOutput[]): ForwardBackwardOutput {
  return {
    lossFnOutputType: results[0]?.lossFnOutputType ?? 'ArrayRecord',
    outputs: results.flatMap((r) => r.outputs),
    metrics: mergeMetrics(
      results.map((r) => r.metrics),
      results.map((r) => r.outputs.length),
    ),
  }
}
