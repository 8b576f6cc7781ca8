// Server overhead benchmark: spawns the real `tuft` process twice (engine double, memory store), once
// with telemetry off and once on (OTLP http/protobuf to a loopback sink that discards, Prometheus on),
// and prints requests/s, p50/p99 latency and the server's own CPU time per request (from
// /proc/<pid>/stat, Linux) of create_session, session_heartbeat and retrieve_future of a ready future
// at 1, 16 and 128 concurrent keep-alive clients, with the on/off ratios. The load generator shares
// the machine, so each point alternates off and on in ROUNDS short rounds and pools them: background
// load hits both alike, and the CPU ratio says what telemetry costs even when latency is noise.
// BENCH_DURATION_MS sets the time per point and mode (default 3000), BENCH_ROUNDS the rounds (3).

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { ALICE, MODEL } from '../test/helpers/app.js'
import { doubleConfig, type SpawnedServer, spawnTuft } from '../test/helpers/spawn.js'

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000)
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
const CONCURRENCY = [1, 16, 128]

interface Case {
  name: string
  path: string
  body: string
}

interface Sample {
  latencies: number[]
  seconds: number
  cpuMs: number
  errors: number
}

interface Figures {
  rps: number
  p50: number
  p99: number
  cpuUsPerRequest: number
  errors: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim() || 100)

/** CPU milliseconds (user + system) the process has used so far; NaN where /proc is unavailable. */
function cpuMs(pid: number | undefined): number {
  try {
    // Fields after the parenthesised command name: state is [0], utime [11], stime [12].
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND
  } catch {
    return Number.NaN
  }
}

/** One round against one server: `concurrency` keep-alive clients posting back to back. */
async function round(server: SpawnedServer, c: Case, concurrency: number, ms: number): Promise<Sample> {
  const url = new URL(`${server.baseUrl}/api/v1${c.path}`)
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const headers = {
    'x-api-key': ALICE,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(c.body),
  }
  const post = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.end(c.body)
    })
  const latencies: number[] = []
  let errors = 0
  const end = performance.now() + ms
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now()
      if ((await post()) !== 200) errors++
      latencies.push(performance.now() - t0)
    }
  }
  const cpu0 = cpuMs(server.proc.pid)
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - started) / 1000
  const cpu = cpuMs(server.proc.pid) - cpu0
  agent.destroy()
  return { latencies, seconds, cpuMs: cpu, errors }
}

function figures(samples: Sample[]): Figures {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b)
  const seconds = samples.reduce((t, s) => t + s.seconds, 0)
  const cpu = samples.reduce((t, s) => t + s.cpuMs, 0)
  return {
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    cpuUsPerRequest: (cpu * 1000) / latencies.length,
    errors: samples.reduce((t, s) => t + s.errors, 0),
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
    {
      name: 'create_session',
      path: '/create_session',
      body: JSON.stringify({ tags: [], user_metadata: {} }),
    },
    { name: 'session_heartbeat', path: '/session_heartbeat', body: JSON.stringify({ session_id: session }) },
    {
      name: 'retrieve_future',
      path: '/retrieve_future',
      body: JSON.stringify({ request_id: future.request_id }),
    },
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
  const widths = [18, 8, 10, 8, 8, 9, 10, 8, 8, 9, 10, 10]
  console.log(
    `telemetry off vs on (OTLP http/protobuf to a discarding sink + Prometheus); ${DURATION_MS} ms per point ` +
      `and mode in ${ROUNDS} alternating rounds; cpu = the server's CPU time per request`,
  )
  console.log(
    row(
      [
        'endpoint',
        'clients',
        'off req/s',
        'p50 ms',
        'p99 ms',
        'cpu µs',
        'on req/s',
        'p50 ms',
        'p99 ms',
        'cpu µs',
      ].concat(['p50 on/off', 'cpu on/off']),
      widths,
    ),
  )
  const pct = (on: number, off: number) => `${((on / off - 1) * 100).toFixed(1)}%`
  for (const [i, c] of cases.off.entries()) {
    for (const n of CONCURRENCY) {
      const samples: { off: Sample[]; on: Sample[] } = { off: [], on: [] }
      for (let r = 0; r < ROUNDS; r++) {
        samples.off.push(await round(servers.off, c, n, DURATION_MS / ROUNDS))
        samples.on.push(await round(servers.on, cases.on[i]!, n, DURATION_MS / ROUNDS))
      }
      const off = figures(samples.off)
      const on = figures(samples.on)
      console.log(
        row(
          [
            c.name,
            n,
            off.rps.toFixed(0),
            off.p50.toFixed(2),
            off.p99.toFixed(2),
            off.cpuUsPerRequest.toFixed(0),
            on.rps.toFixed(0),
            on.p50.toFixed(2),
            on.p99.toFixed(2),
            on.cpuUsPerRequest.toFixed(0),
            pct(on.p50, off.p50),
            pct(on.cpuUsPerRequest, off.cpuUsPerRequest),
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
