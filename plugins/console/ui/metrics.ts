// Turns a run's metric points into chart series: one value per optimizer step and metric, reduced the
// way Tinker's metric names say (`:sum` adds, `:mean` averages, `:max` / `:min` keep the extreme;
// anything else keeps the latest), so gradient accumulation over several passes gives one point per step.

import type { MetricPoint } from './types.js'

export interface Series {
  /** e.g. "forward_backward loss:sum". */
  label: string
  /** [step, value], by step. */
  points: [number, number][]
}

function reduce(name: string, values: number[]): number {
  if (name.endsWith(':sum')) return values.reduce((a, b) => a + b, 0)
  if (name.endsWith(':mean')) return values.reduce((a, b) => a + b, 0) / values.length
  if (name.endsWith(':max')) return Math.max(...values)
  if (name.endsWith(':min')) return Math.min(...values)
  return values.at(-1) ?? Number.NaN
}

/** One series per (kind, metric) present in the points, in order of first appearance. */
export function seriesOf(points: readonly MetricPoint[]): Series[] {
  const byLabel = new Map<string, Map<number, number[]>>()
  for (const p of points) {
    for (const [name, value] of Object.entries(p.metrics)) {
      const label = `${p.kind} ${name}`
      let steps = byLabel.get(label)
      if (!steps) {
        steps = new Map()
        byLabel.set(label, steps)
      }
      const values = steps.get(p.step)
      if (values) values.push(value)
      else steps.set(p.step, [value])
    }
  }
  return [...byLabel].map(([label, steps]) => ({
    label,
    points: [...steps]
      .sort((a, b) => a[0] - b[0])
      .map(([step, values]): [number, number] => [step, reduce(label, values)]),
  }))
}
