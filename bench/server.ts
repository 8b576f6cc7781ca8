// Server overhead benchmark: starts the app in-process on a free loopback port (engine double, memory
// store) and prints requests/s and p50/p99 latency of create_session, session_heartbeat and
// retrieve_future of a ready future, at 1, 16 and 128 concurrent keep-alive clients. `--telemetry`
// runs it with telemetry on (OTLP export to a loopback receiver + Prometheus) to compare with off.

import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { ALICE, MODEL, startTestApp } from '../test/helpers/app.js'
import { startOtlpHttpReceiver } from '../test/helpers/otlp-receiver.js'

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2000)
const CONCURRENCY = [1, 16, 128]

interface Case {
  name: string
  body: () => unknown
  path: string
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function run(base: string, c: Case, concurrency: number) {
  const latencies: number[] = []
  let errors = 0
  const end = performance.now() + DURATION_MS
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      const res = await fetch(`${base}${c.path}`, {
        method: 'POST',
        headers: { 'x-api-key': ALICE, 'content-type': 'application/json' },
        body: JSON.stringify(c.body()),
      })
      await res.arrayBuffer()
      if (res.status !== 200) errors++
      latencies.push(performance.now() - t0)
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  }
}

const { values: flags } = parseArgs({ options: { telemetry: { type: 'boolean', default: false } } })
const receiver = flags.telemetry ? await startOtlpHttpReceiver() : null
const t = await startTestApp(
  receiver
    ? { telemetry: { enabled: true, otlp_endpoint: receiver.endpoint, prometheus: { enabled: true } } }
    : {},
)
console.log(`telemetry: ${receiver ? 'on (OTLP http/protobuf to a loopback receiver, Prometheus)' : 'off'}`)
try {
  const base = `${await t.app.listen({ host: '127.0.0.1', port: 0 })}/api/v1`
  const post = async (path: string, body: unknown) =>
    (await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'x-api-key': ALICE, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then((r) => r.json())) as Record<string, string>
  const session = (await post('/create_session', { tags: [], user_metadata: {} })).session_id!
  const future = await post('/create_model', {
    session_id: session,
    model_seq_id: 0,
    base_model: MODEL,
    lora_config: { rank: 4 },
  })
  const ready = await post('/retrieve_future', { request_id: future.request_id })
  if (ready.model_id !== future.model_id) throw new Error(`future not ready: ${JSON.stringify(ready)}`)

  const cases: Case[] = [
    { name: 'create_session', path: '/create_session', body: () => ({ tags: [], user_metadata: {} }) },
    { name: 'session_heartbeat', path: '/session_heartbeat', body: () => ({ session_id: session }) },
    { name: 'retrieve_future', path: '/retrieve_future', body: () => ({ request_id: future.request_id }) },
  ]
  console.log(`endpoint            clients   req/s     p50 ms   p99 ms   errors   (${DURATION_MS} ms each)`)
  for (const c of cases) {
    for (const n of CONCURRENCY) {
      const r = await run(base, c, n)
      console.log(
        `${c.name.padEnd(20)}${String(n).padStart(7)}${r.rps.toFixed(0).padStart(8)}${r.p50.toFixed(2).padStart(11)}${r.p99.toFixed(2).padStart(9)}${String(r.errors).padStart(9)}`,
      )
      if (r.errors > 0) process.exitCode = 1
    }
  }
} finally {
  await t.close()
  await receiver?.close()
}
