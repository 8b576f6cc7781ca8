// For operators: each model's queue depths and how busy its engines are (GET /api/v1/admin/status),
// polled every few seconds, with the busy fractions charted since the page was opened.

import { useEffect, useState } from 'preact/hooks'
import { api, errorText } from '../api.js'
import { Chart } from '../components/chart.js'
import { Busy, ErrorLine } from '../components/status.js'
import type { Series } from '../metrics.js'
import type { ServerStatus } from '../types.js'

const POLL_MS = 2000
/** Readings kept for the chart (10 minutes). */
const KEEP = 300

const percent = (f: number) => `${(f * 100).toFixed(0)}%`

export function Server() {
  const [status, setStatus] = useState<ServerStatus | null>(null)
  const [history, setHistory] = useState<{ at: number; status: ServerStatus }[]>([])
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let stopped = false
    const load = async () => {
      try {
        const s = await api<ServerStatus>('/api/v1/admin/status')
        if (stopped) return
        setStatus(s)
        setHistory((h) => [...h, { at: Date.now() / 1000, status: s }].slice(-KEEP))
        setError(null)
      } catch (err) {
        if (!stopped) setError(errorText(err))
      }
    }
    void load()
    const timer = setInterval(load, POLL_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])

  const series: Series[] = (status?.models ?? []).flatMap((m) =>
    (['training', 'sampling'] as const).map((role) => ({
      label: `${m.model_name} ${role}`,
      points: history.flatMap(({ at, status: s }) => {
        const model = s.models.find((x) => x.model_name === m.model_name)
        return model ? [[at, model[role].busy_fraction] as [number, number]] : []
      }),
    })),
  )
  return (
    <>
      <h1 tabIndex={-1}>Server</h1>
      <ErrorLine error={error} />
      {status === null && error === null && <Busy what="Loading the server's status" />}
      {status !== null && (
        <table>
          <caption>Models, their queues and engines</caption>
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col">State</th>
              <th scope="col">Training queue</th>
              <th scope="col">Training engine busy</th>
              <th scope="col">Sampling queue</th>
              <th scope="col">Sampling engine busy</th>
            </tr>
          </thead>
          <tbody>
            {status.models.map((m) => (
              <tr key={m.model_name}>
                <th scope="row">{m.model_name}</th>
                <td>{m.state}</td>
                <td class="num">{m.training.queue_depth}</td>
                <td class="num">{percent(m.training.busy_fraction)}</td>
                <td class="num">{m.sampling.queue_depth}</td>
                <td class="num">{percent(m.sampling.busy_fraction)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {history.length > 1 && (
        <Chart
          title="Engine busy fraction"
          xLabel="time"
          time
          series={series}
          description="Share of time each engine had work in flight, since this page was opened"
        />
      )}
    </>
  )
}
