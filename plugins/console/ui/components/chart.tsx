// A line chart (uPlot) of one or more series over a shared x axis, redrawn in place as points arrive.
// The canvas is described for screen readers by `description`; `data-points` counts what is drawn.

import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import type { Series } from '../metrics.js'

const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2']
const HEIGHT = 240
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000]

/** uPlot's column layout: the sorted union of every series' x, and each series' y there (null: none). */
function aligned(series: Series[]): uPlot.AlignedData {
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b)
  const ys = series.map((s) => {
    const at = new Map(s.points)
    return xs.map((x) => at.get(x) ?? null)
  })
  return [xs, ...ys]
}

export interface ChartProps {
  title: string
  xLabel: string
  series: Series[]
  /** The x values are Unix seconds. */
  time?: boolean
  /** The x axis spans at least this much, ending at the newest point (a lone hourly bucket in a day). */
  minSpan?: number
  description: string
}

export function Chart({ title, xLabel, series, time = false, minSpan, description }: ChartProps) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const labels = series.map((s) => s.label).join('\n')

  // A new set of series needs a new plot; new points only new data (below).
  useEffect(() => {
    const el = box.current!
    plot.current = new uPlot(
      {
        width: el.clientWidth || 600,
        height: HEIGHT,
        scales: {
          x: {
            time,
            ...(minSpan === undefined
              ? {}
              : { range: (_u: uPlot, min: number, max: number) => [Math.min(min, max - minSpan), max] }),
          },
        },
        // Steps are whole numbers: no ticks between them.
        axes: [{ label: xLabel, ...(time ? {} : { incrs: WHOLE_STEPS }) }, {}],
        legend: { live: false },
        series: [
          { label: xLabel },
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLORS[i % COLORS.length],
            width: 2,
            spanGaps: true,
            points: { show: true, size: 5 },
          })),
        ],
      },
      aligned(series),
      el,
    )
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: el.clientWidth, height: HEIGHT }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      plot.current?.destroy()
      plot.current = null
    }
  }, [labels, time, xLabel, minSpan])

  useEffect(() => {
    plot.current?.setData(aligned(series))
  }, [series])

  const count = series.reduce((n, s) => n + s.points.length, 0)
  return (
    <figure class="chart" data-points={count}>
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={description} />
    </figure>
  )
}
