// Server overhead benchmark: spawns the real `tuft` process twice (engine double, memory store), once
// with telemetry off and once on (OTLP http/protobuf to a loopback sink that discards, Prometheus on),
// and prints requests/s and p50/p99 latency of create_session, session_heartbeat and retrieve_future
// of a ready future at 1, 16 and 128 concurrent keep-alive clients, with the on/off latency ratio.
// The two servers are measured alternately, case by case, so background load hits both alike.
// BENCH_DURATION_MS sets the length of each measurement (default 2000).

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { ALICE, MODEL } from '../test/helpers/app.js'
import { doubleConfig, type SpawnedServer, spawnTuft } from '../test/helpers/spawn.js'

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 2000)
const CONCURRENCY = [1, 16, 128]

interface Case {
  name: string
  path: string
  body: () => unknown
}

interface Figures {
  rps: number
  p50: number
  p99: number
  errors: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function measure(base: string, c: Case, concurrency: number): Promise<Figures> {
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

/** An OTLP endpoint that accepts and discards: the bench measures the server's cost, not a collector's. */
async function startSink(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** A session and a finished future on `server`, for the heartbeat and retrieve_future cases. */
async function prepare(server: SpawnedServer): Promise<Case[]> {
  const base = `${server.baseUrl}/api/v1`
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
  return [
    { name: 'create_session', path: '/create_session', body: () => ({ tags: [], user_metadata: {} }) },
    { name: 'session_heartbeat', path: '/session_heartbeat', body: () => ({ session_id: session }) },
    { name: 'retrieve_future', path: '/retrieve_future', body: () => ({ request_id: future.request_id }) },
  ]
}

const row = (cells: (string | number)[], widths: number[]) =>
  cells.map((cell, i) => String(cell)[i === 0 ? 'padEnd' : 'padStart'](widths[i]!)).join('')

const sink = await startSink()
const servers = {
  off: await spawnTuft((dir) => ({ ...doubleConfig(dir), telemetry: { enabled: false } })),
  on: await spawnTuft((dir) => ({
    ...doubleConfig(dir),
    telemetry: { enabled: true, otlp_endpoint: sink.url, prometheus: { enabled: true } },
  })),
}
try {
  const cases = { off: await prepare(servers.off), on: await prepare(servers.on) }
  const widths = [20, 8, 11, 9, 9, 11, 9, 9, 12]
  console.log(
    `telemetry off vs on (OTLP http/protobuf to a discarding sink + Prometheus); ${DURATION_MS} ms each`,
  )
  console.log(
    row(
      ['endpoint', 'clients', 'off req/s', 'p50 ms', 'p99 ms', 'on req/s', 'p50 ms', 'p99 ms', 'p50 on/off'],
      widths,
    ),
  )
  for (const [i, c] of cases.off.entries()) {
    for (const n of CONCURRENCY) {
      const off = await measure(`${servers.off.baseUrl}/api/v1`, c, n)
      const on = await measure(`${servers.on.baseUrl}/api/v1`, cases.on[i]!, n)
      console.log(
        row(
          [
            c.name,
            n,
            off.rps.toFixed(0),
            off.p50.toFixed(2),
            off.p99.toFixed(2),
            on.rps.toFixed(0),
            on.p50.toFixed(2),
            on.p99.toFixed(2),
            `${((on.p50 / off.p50 - 1) * 100).toFixed(1)}%`,
          ],
          widths,
        ),
      )
      if (off.errors + on.errors > 0) {
        console.log(`  errors: off ${off.errors}, on ${on.errors}`)
        process.exitCode = 1
      }
    }
  }
} finally {
  await servers.off.stop()
  await servers.on.stop()
  await sink.close()
}
