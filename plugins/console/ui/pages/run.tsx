// One training run: its facts and live charts of its metrics — the loss of every forward_backward (and
// forward) pass and the optim_step metrics, one point per optimizer step, polled while the page is open.

import { useEffect, useMemo, useState } from 'preact/hooks'
import { ApiError, api, errorText } from '../api.js'
import { Chart } from '../components/chart.js'
import { Busy, ErrorLine, when } from '../components/status.js'
import { seriesOf } from '../metrics.js'
import type { MetricPoint, RunMetrics, TrainingRun } from '../types.js'

const POLL_MS = 1000

export function Run({ id }: { id: string }) {
  const [run, setRun] = useState<TrainingRun | null>(null)
  const [points, setPoints] = useState<MetricPoint[]>([])
  const [missing, setMissing] = useState(false)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let stopped = false
    let after = -1
    let timer: ReturnType<typeof setTimeout> | undefined
    const path = `/api/v1/training_runs/${encodeURIComponent(id)}`
    const poll = async () => {
      try {
        const [info, page] = await Promise.all([
          api<TrainingRun>(path),
          api<RunMetrics>(`${path}/metrics?after=${after}`),
        ])
        if (stopped) return
        setRun(info)
        if (page.points.length > 0) {
          after = page.points.at(-1)!.n
          setPoints((old) => [...old, ...page.points])
        }
        setError(null)
      } catch (err) {
        if (stopped) return
        if (err instanceof ApiError && err.status === 404) {
          setMissing(true)
          return
        }
        setError(errorText(err))
      }
      if (!stopped) timer = setTimeout(poll, POLL_MS)
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [id])

  const series = useMemo(() => seriesOf(points), [points])
  const losses = series.filter((s) => s.label.includes('loss'))
  const others = series.filter((s) => !s.label.includes('loss'))

  if (missing) {
    return (
      <>
        <h1 tabIndex={-1}>Training run not found</h1>
        <p role="alert">
          There is no training run <code>{id}</code> among yours. It may belong to someone else, or the id may
          be mistyped.
        </p>
      </>
    )
  }
  const latest = losses[0]?.points.at(-1)
  return (
    <>
      <h1 tabIndex={-1}>
        Run <code>{id}</code>
      </h1>
      <ErrorLine error={error} />
      {run === null && error === null && <Busy what="Loading the run" />}
      {run !== null && (
        <dl class="facts">
          <dt>Base model</dt>
          <dd>{run.base_model}</dd>
          <dt>LoRA rank</dt>
          <dd>{run.lora_rank ?? '—'}</dd>
          <dt>Last request</dt>
          <dd>{when(run.last_request_time)}</dd>
          <dt>Last step</dt>
          <dd>{points.at(-1)?.step ?? 0}</dd>
          <dt>Latest checkpoint</dt>
          <dd>{run.last_checkpoint?.tinker_path ?? '—'}</dd>
          <dt>Latest sampler checkpoint</dt>
          <dd>{run.last_sampler_checkpoint?.tinker_path ?? '—'}</dd>
        </dl>
      )}
      {run !== null && points.length === 0 && (
        <p>No metrics yet: they appear here as soon as the run computes its first loss.</p>
      )}
      {losses.length > 0 && (
        <Chart
          title="Loss by step"
          xLabel="step"
          series={losses}
          description={`Loss by optimizer step; ${losses[0]!.points.length} steps${
            latest ? `, latest ${latest[1].toPrecision(4)} at step ${latest[0]}` : ''
          }`}
        />
      )}
      {others.map((s) => (
        <Chart
          key={s.label}
          title={s.label}
          xLabel="step"
          series={[s]}
          description={`${s.label} by optimizer step, ${s.points.length} steps`}
        />
      ))}
    </>
  )
}
