// The user's training runs, newest activity first, with when each was created and its last step.

import { useEffect, useState } from 'preact/hooks'
import { api, errorText } from '../api.js'
import { Busy, ErrorLine, when } from '../components/status.js'
import { onLinkClick, runPath } from '../router.js'
import type { RunMetrics, TrainingRun } from '../types.js'

const REFRESH_MS = 5000

type Row = TrainingRun & { summary: RunMetrics | null }

export function Runs() {
  const [rows, setRows] = useState<Row[] | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let stopped = false
    const load = async () => {
      try {
        const { training_runs } = await api<{ training_runs: TrainingRun[] }>(
          '/api/v1/training_runs?limit=100&access_scope=owned',
        )
        const summaries = await Promise.all(
          training_runs.map((r) =>
            api<RunMetrics>(
              `/api/v1/training_runs/${encodeURIComponent(r.training_run_id)}/metrics?limit=0`,
            ).catch(() => null),
          ),
        )
        if (!stopped) {
          setRows(training_runs.map((r, i) => ({ ...r, summary: summaries[i] ?? null })))
          setError(null)
        }
      } catch (err) {
        if (!stopped) setError(errorText(err))
      }
    }
    void load()
    const timer = setInterval(load, REFRESH_MS)
    return () => {
      stopped = true
      clearInterval(timer)
    }
  }, [])

  return (
    <>
      <h1 tabIndex={-1}>Training runs</h1>
      <ErrorLine error={error} />
      {rows === null && error === null && <Busy what="Loading your runs" />}
      {rows !== null && rows.length === 0 && (
        <p>No training runs yet. Start one with the Tinker SDK or the TypeScript client (see examples/).</p>
      )}
      {rows !== null && rows.length > 0 && (
        <table>
          <caption class="visually-hidden">Your training runs</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Base model</th>
              <th scope="col">Rank</th>
              <th scope="col">Created</th>
              <th scope="col">Last step</th>
              <th scope="col">Last request</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.training_run_id}>
                <td>
                  <a href={runPath(r.training_run_id)} onClick={onLinkClick}>
                    {r.training_run_id}
                  </a>
                  {r.corrupted && <span class="tag bad"> failed</span>}
                </td>
                <td>{r.base_model}</td>
                <td>{r.lora_rank ?? '—'}</td>
                <td>{when(r.summary?.created_time)}</td>
                <td>{r.summary?.last_step ?? '—'}</td>
                <td>{when(r.last_request_time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  )
}
