// Metered usage: the user's totals and tokens per hour (the billing buckets of GET
// /api/v1/billing/usage/events); operators also see every user's totals (GET /api/v1/admin/usage).

import { useEffect, useState } from 'preact/hooks'
import { api, errorText } from '../api.js'
import { Chart } from '../components/chart.js'
import { Busy, bytes, count, ErrorLine } from '../components/status.js'
import type { Series } from '../metrics.js'
import type { BillingEvent, UsageTotals, UserUsage } from '../types.js'

const REFRESH_MS = 5000
const HISTORY_DAYS = 30
const DAY_SECONDS = 86_400
const TOKEN_KINDS: [string, string][] = [
  ['training', 'tokens trained'],
  ['sampling_prefill', 'prompt tokens'],
  ['sampling_sample', 'tokens sampled'],
]

/** Tokens per hourly bucket, one series per kind of token; x in Unix seconds. */
function hourlySeries(events: BillingEvent[]): Series[] {
  return TOKEN_KINDS.map(([type, label]) => {
    const byHour = new Map<number, number>()
    for (const e of events) {
      if (e.event_info.type !== type) continue
      const at = Date.parse(e.bucket_start) / 1000
      byHour.set(at, (byHour.get(at) ?? 0) + (e.event_info.token_count ?? 0))
    }
    return { label, points: [...byHour].sort((a, b) => a[0] - b[0]) }
  }).filter((s) => s.points.length > 0)
}

function TotalsRow({ name, t }: { name: string; t: UsageTotals }) {
  return (
    <tr>
      <th scope="row">{name}</th>
      <td class="num">{count(t.training_tokens)}</td>
      <td class="num">{count(t.prefill_tokens)}</td>
      <td class="num">{count(t.sampled_tokens)}</td>
      <td class="num">{count(t.checkpoints_saved)}</td>
      <td class="num">{bytes(t.checkpoint_bytes)}</td>
      <td class="num">{t.storage_gigabyte_hours.toFixed(4)}</td>
    </tr>
  )
}

function TotalsTable({ caption, rows }: { caption: string; rows: [string, UsageTotals][] }) {
  return (
    <table>
      <caption>{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Who / model</th>
          <th scope="col">Tokens trained</th>
          <th scope="col">Prompt tokens</th>
          <th scope="col">Tokens sampled</th>
          <th scope="col">Checkpoints saved</th>
          <th scope="col">Stored now</th>
          <th scope="col">Storage GB·h</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([name, t]) => (
          <TotalsRow key={name} name={name} t={t} />
        ))}
      </tbody>
    </table>
  )
}

export function Usage({ operator }: { operator: boolean }) {
  const [mine, setMine] = useState<UserUsage | null>(null)
  const [events, setEvents] = useState<BillingEvent[]>([])
  const [everyone, setEveryone] = useState<UserUsage[] | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let stopped = false
    const load = async () => {
      try {
        const since = new Date(Date.now() - HISTORY_DAYS * 86_400_000).toISOString()
        const [usage, billing, all] = await Promise.all([
          api<UserUsage>('/api/v1/usage'),
          api<{ data: BillingEvent[] }>(
            `/api/v1/billing/usage/events?starting_on=${encodeURIComponent(since)}`,
          ),
          operator ? api<{ users: UserUsage[] }>('/api/v1/admin/usage') : Promise.resolve(null),
        ])
        if (stopped) return
        setMine(usage)
        setEvents(billing.data)
        setEveryone(all?.users ?? null)
        setError(null)
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
  }, [operator])

  const series = hourlySeries(events)
  return (
    <>
      <h1 tabIndex={-1}>Usage</h1>
      <ErrorLine error={error} />
      {mine === null && error === null && <Busy what="Loading your usage" />}
      {mine !== null && (
        <TotalsTable
          caption={`Your usage (${mine.user_id})`}
          rows={[['all models', mine.totals], ...Object.entries(mine.models)]}
        />
      )}
      {series.length > 0 ? (
        <Chart
          title="Tokens per hour"
          xLabel="hour"
          time
          minSpan={DAY_SECONDS}
          series={series}
          description={`Tokens per hour over the last ${HISTORY_DAYS} days: ${series
            .map((s) => `${s.label} ${count(s.points.reduce((n, [, v]) => n + v, 0))}`)
            .join(', ')}`}
        />
      ) : (
        mine !== null && <p>No tokens metered in the last {HISTORY_DAYS} days.</p>
      )}
      {everyone !== null && (
        <TotalsTable
          caption="Every user's usage (operators)"
          rows={everyone.map((u) => [u.user_id, u.totals])}
        />
      )}
    </>
  )
}
