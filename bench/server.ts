// Telemetry overhead benchmark. Spawns the real `tuft` process with telemetry off, on (OTLP
// http/protobuf to a loopback sink that discards, Prometheus on) and on with trace_sample_ratio 0.1,
// each writing its log to a file as a deployed server does, and measures two things:
//  1. API round trips: create_session, session_heartbeat and retrieve_future (engine double, memory
//     store) at 1, 16 and 128 concurrent keep-alive clients: requests/s, p50/p99 latency and the
//     server's CPU time per request (/proc/<pid>/stat, Linux). These are the cheapest requests the API
//     has, so the fixed per-request cost of telemetry weighs the most on them; at 16 and 128 clients
//     the server is saturated and latency is queueing, so their ratio is the CPU ratio.
//     Then heartbeat and retrieve_future at fixed request rates below saturation (open loop): the
//     latency a request sees when the server is busy but not overloaded.
//  2. A training loop through the TS client on the embedded model with the native engine, as a user
//     runs one: forward_backward + optim_step per step (each submitted and awaited), then sampling.
// The load generator shares the machine, so each point alternates the modes in ROUNDS short rounds
// and pools them: background load hits all alike.
// BENCH_DURATION_MS: time per API point and mode (default 3000); BENCH_ROUNDS: rounds (6);
// BENCH_STEPS: training steps per round and mode (30); BENCH_RATES: open-loop rates (2000,4000).

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { stringify } from 'yaml'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { EMBEDDED_MODEL_NAME } from '../engines/embedded-model.js'
import { ALICE, MODEL } from '../test/helpers/app.js'
import { SHARED_MODEL_CACHE } from '../test/helpers/native-server.js'
import { doubleConfig } from '../test/helpers/spawn.js'
import { readyAddress } from '../test/helpers/tuft-process.js'

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000)
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 6))
const STEPS = Math.max(1, Number(process.env.BENCH_STEPS ?? 30))
const CONCURRENCY = [1, 16, 128]
/**
 * Open-loop rates: at most half the capacity of one core with telemetry on (~7–15k requests/s).
 * BENCH_RATES (e.g. 500,1000) lowers them where other work leaves the server less than that.
 */
const RATES = (process.env.BENCH_RATES ?? '2000,4000').split(',').map(Number)
const BIN = new URL('../bin/tuft.js', import.meta.url).pathname

/**
 * With 2+ CPUs and taskset (Linux), the server runs on CPU 0 and this load generator on the others, so
 * the two do not take turns on one core (which made on/off ratios swing by ±15 %).
 */
const PINNED =
  availableParallelism() >= 2 &&
  spawnSync('taskset', ['-a', '-p', '-c', `1-${availableParallelism() - 1}`, String(process.pid)]).status ===
    0

/** off; on (every trace exported); sampled (on with trace_sample_ratio 0.1). */
const MODES = ['off', 'on', 'sampled'] as const
type Mode = (typeof MODES)[number]

interface Server {
  baseUrl: string
  pid: number
  stop(): Promise<void>
}

/** `tuft --config` in a fresh directory, its log in a file; resolves once all models are loaded. */
async function startServer(configOf: (dir: string) => Record<string, unknown>): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-bench-'))
  const configPath = join(dir, 'tuft.yaml')
  writeFileSync(configPath, stringify({ ...configOf(dir), host: '127.0.0.1', port: 0, log_level: 'info' }))
  const logPath = join(dir, 'tuft.log')
  const log = openSync(logPath, 'w')
  const command = [process.execPath, BIN, '--config', configPath]
  if (PINNED) command.unshift('taskset', '-c', '0')
  const proc: ChildProcess = spawn(command[0]!, command.slice(1), { cwd: dir, stdio: ['ignore', log, log] })
  closeSync(log)
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const deadline = performance.now() + 120_000
  for (;;) {
    const text = readFileSync(logPath, 'utf8')
    const baseUrl = readyAddress(text)
    if (baseUrl !== undefined) {
      return {
        baseUrl,
        pid: proc.pid!,
        async stop() {
          proc.kill('SIGTERM')
          await exited
          rmSync(dir, { recursive: true, force: true })
        },
      }
    }
    if (proc.exitCode !== null || performance.now() > deadline)
      throw new Error(`tuft did not become ready:\n${text.slice(-4000)}`)
    await sleep(50)
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

const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim() || 100)

/** CPU milliseconds (user + system) the process has used so far; NaN where /proc is unavailable. */
function cpuMs(pid: number): number {
  try {
    // Fields after the parenthesised command name: state is [0], utime [11], stime [12].
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND
  } catch {
    return Number.NaN
  }
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
  cpuUsPerOp: number
  errors: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

function figures(samples: Sample[]): Figures {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b)
  const seconds = samples.reduce((t, s) => t + s.seconds, 0)
  const cpu = samples.reduce((t, s) => t + s.cpuMs, 0)
  return {
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    cpuUsPerOp: (cpu * 1000) / latencies.length,
    errors: samples.reduce((t, s) => t + s.errors, 0),
  }
}

/** Runs `op` back to back from `concurrency` workers for `ms` (or `count` times per worker). */
async function measure(
  pid: number,
  concurrency: number,
  op: () => Promise<boolean>,
  limit: { ms?: number; count?: number },
): Promise<Sample> {
  const latencies: number[] = []
  let errors = 0
  const end = performance.now() + (limit.ms ?? Number.POSITIVE_INFINITY)
  const worker = async () => {
    for (let i = 0; i < (limit.count ?? Number.POSITIVE_INFINITY) && performance.now() < end; i++) {
      const t0 = performance.now()
      if (!(await op())) errors++
      latencies.push(performance.now() - t0)
    }
  }
  const cpu0 = cpuMs(pid)
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  return {
    latencies,
    seconds: (performance.now() - started) / 1000,
    cpuMs: cpuMs(pid) - cpu0,
    errors,
  }
}

/**
 * Open loop: starts `rate` requests per second on schedule, whether or not earlier ones have finished,
 * and counts each latency from when the request was due, so a slow server cannot hide its queueing.
 */
async function measureAtRate(
  pid: number,
  rate: number,
  ms: number,
  op: () => Promise<boolean>,
): Promise<Sample> {
  const latencies: number[] = []
  const inflight: Promise<void>[] = []
  let errors = 0
  let sent = 0
  const cpu0 = cpuMs(pid)
  const started = performance.now()
  while (performance.now() - started < ms) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate)
    for (; sent < due; sent++) {
      const dueAt = started + (sent * 1000) / rate
      inflight.push(
        op().then((ok) => {
          if (!ok) errors++
          latencies.push(performance.now() - dueAt)
        }),
      )
    }
    // Spin through the event loop rather than sleep: timers tick at ~1 ms, which would batch the
    // requests and add up to a millisecond of scheduling delay to the latencies.
    await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(inflight)
  return { latencies, seconds: (performance.now() - started) / 1000, cpuMs: cpuMs(pid) - cpu0, errors }
}

const row = (cells: (string | number)[], widths: number[]) =>
  cells.map((cell, i) => String(cell)[i === 0 ? 'padEnd' : 'padStart'](widths[i]!)).join('')
const pct = (on: number, off: number) => `${((on / off - 1) * 100).toFixed(1)}%`
const WIDTHS = [18, 8, 10, 8, 8, 9, 10, 8, 8, 9, 11, 11, 12, 12]
const HEADER = ['clients', 'off op/s', 'p50 ms', 'p99 ms', 'cpu µs', 'on op/s', 'p50 ms', 'p99 ms', 'cpu µs']
const RATIOS = ['p50 on/off', 'cpu on/off', 'p50 10%/off', 'cpu 10%/off']

function header(first: string, second = 'clients'): void {
  console.log(row([first, second, ...HEADER.slice(1), ...RATIOS], WIDTHS))
}

function report(name: string, clients: number, samples: Record<Mode, Sample[]>): void {
  const off = figures(samples.off)
  const on = figures(samples.on)
  const sampled = figures(samples.sampled)
  const cells = [off.rps, off.p50, off.p99, off.cpuUsPerOp, on.rps, on.p50, on.p99, on.cpuUsPerOp]
  const fixed = [0, 2, 2, 0, 0, 2, 2, 0]
  console.log(
    row(
      [
        name,
        clients,
        ...cells.map((v, i) => v.toFixed(fixed[i])),
        pct(on.p50, off.p50),
        pct(on.cpuUsPerOp, off.cpuUsPerOp),
        pct(sampled.p50, off.p50),
        pct(sampled.cpuUsPerOp, off.cpuUsPerOp),
      ],
      WIDTHS,
    ),
  )
  if (off.errors + on.errors + sampled.errors > 0) {
    console.log(`  errors: off ${off.errors}, on ${on.errors}, sampled ${sampled.errors}`)
    process.exitCode = 1
  }
}

/** One keep-alive POST of a fixed JSON body; true on 200. */
function poster(baseUrl: string, path: string, body: string, concurrency: number) {
  const url = new URL(`${baseUrl}/api/v1${path}`)
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const headers = {
    'x-api-key': ALICE,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  }
  const post = () =>
    new Promise<boolean>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode === 200))
      })
      req.on('error', reject)
      req.end(body)
    })
  return { post, close: () => agent.destroy() }
}

/** The API cases on `baseUrl`: a session and a finished future for heartbeat and retrieve_future. */
async function apiCases(baseUrl: string): Promise<{ name: string; path: string; body: string }[]> {
  const post = async (path: string, body: unknown) =>
    (await fetch(`${baseUrl}/api/v1${path}`, {
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

/** One server per mode, started in turn. */
async function startServers(configOf: (mode: Mode) => (dir: string) => Record<string, unknown>) {
  const servers = {} as Record<Mode, Server>
  for (const mode of MODES) servers[mode] = await startServer(configOf(mode))
  return servers
}

async function stopServers(servers: Record<Mode, Server>): Promise<void> {
  await Promise.all(Object.values(servers).map((s) => s.stop()))
}

async function benchApi(telemetry: Record<Mode, Record<string, unknown>>): Promise<void> {
  const servers = await startServers((mode) => (dir) => ({
    ...doubleConfig(dir),
    telemetry: telemetry[mode],
  }))
  try {
    const cases = {} as Record<Mode, Awaited<ReturnType<typeof apiCases>>>
    for (const mode of MODES) cases[mode] = await apiCases(servers[mode].baseUrl)
    console.log(`\nAPI round trips (engine double): ${DURATION_MS} ms per point and mode in ${ROUNDS} rounds`)
    header('endpoint')
    for (const [i, c] of cases.off.entries()) {
      for (const n of CONCURRENCY) {
        const samples: Record<Mode, Sample[]> = { off: [], on: [], sampled: [] }
        for (let r = 0; r < ROUNDS; r++) {
          for (const mode of MODES) {
            const { path, body } = cases[mode][i]!
            const client = poster(servers[mode].baseUrl, path, body, n)
            samples[mode].push(await measure(servers[mode].pid, n, client.post, { ms: DURATION_MS / ROUNDS }))
            client.close()
          }
        }
        report(c.name, n, samples)
      }
    }
    console.log(
      `\nAt a fixed request rate (open loop, latency from when each request was due): ${DURATION_MS} ms ` +
        `per point and mode in ${ROUNDS} rounds`,
    )
    header('endpoint', 'req/s')
    for (const [i, c] of cases.off.entries()) {
      if (c.name === 'create_session') continue // it grows the store at every call: its rate would drift
      for (const rate of RATES) {
        const samples: Record<Mode, Sample[]> = { off: [], on: [], sampled: [] }
        for (let r = 0; r < ROUNDS; r++) {
          for (const mode of MODES) {
            const { path, body } = cases[mode][i]!
            const client = poster(servers[mode].baseUrl, path, body, 256)
            samples[mode].push(
              await measureAtRate(servers[mode].pid, rate, DURATION_MS / ROUNDS, client.post),
            )
            client.close()
          }
        }
        report(c.name, rate, samples)
      }
    }
  } finally {
    await stopServers(servers)
  }
}

/** 64 tokens of a repeating pattern: one datum per forward_backward. */
const TOKENS = Array.from({ length: 64 }, (_, i) => 100 + ((i * 37) % 500))

async function benchTraining(telemetry: Record<Mode, Record<string, unknown>>): Promise<void> {
  // No supported_models: the embedded default model, as `tuft` serves it out of the box.
  const config = (mode: Mode) => (dir: string) => ({
    model_cache_dir: SHARED_MODEL_CACHE,
    checkpoint_dir: join(dir, 'checkpoints'),
    authorized_users: { [ALICE]: 'alice' },
    telemetry: telemetry[mode],
  })
  const servers = await startServers(config)
  const clients: ServiceClient[] = []
  try {
    const loops = Object.fromEntries(
      await Promise.all(
        MODES.map(async (mode) => {
          const client = new ServiceClient({
            baseUrl: servers[mode].baseUrl,
            apiKey: ALICE,
            telemetry: false,
          })
          clients.push(client)
          const training = await client.createLoraTrainingClient(EMBEDDED_MODEL_NAME, { rank: 8, seed: 1 })
          const datum = datumFromTokens(TOKENS)
          const step = async () => {
            await training.forwardBackward([datum], 'cross_entropy')
            await training.optimStep({ learning_rate: 1e-4 })
            return true
          }
          for (let i = 0; i < 3; i++) await step() // warm-up: first-call allocations, JIT
          const sampler = await training.saveWeightsAndGetSamplingClient()
          const sample = async () => {
            await sampler.sample(TOKENS.slice(0, 16), 1, { max_tokens: 8, temperature: 0 })
            return true
          }
          await sample()
          return [mode, { step, sample }] as const
        }),
      ),
    ) as Record<Mode, { step: () => Promise<boolean>; sample: () => Promise<boolean> }>
    console.log(
      `\nTraining loop through the TS client (embedded model, native engine, 1 datum × ${TOKENS.length} tokens): ` +
        `${STEPS} operations per round and mode in ${ROUNDS} rounds; cpu = server CPU per operation`,
    )
    header('operation')
    for (const op of ['step', 'sample'] as const) {
      const samples: Record<Mode, Sample[]> = { off: [], on: [], sampled: [] }
      for (let r = 0; r < ROUNDS; r++)
        for (const mode of MODES)
          samples[mode].push(await measure(servers[mode].pid, 1, loops[mode][op], { count: STEPS }))
      report(op === 'step' ? 'fwd_bwd+optim' : 'sample 8 tokens', 1, samples)
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()))
    await stopServers(servers)
  }
}

const sink = await startSink()
const telemetry: Record<Mode, Record<string, unknown>> = {
  off: { enabled: false },
  on: { enabled: true, otlp_endpoint: sink.url, prometheus: { enabled: true } },
  sampled: { enabled: true, otlp_endpoint: sink.url, prometheus: { enabled: true }, trace_sample_ratio: 0.1 },
}
console.log(
  'telemetry off vs on (OTLP http/protobuf to a discarding sink + Prometheus scrape endpoint) ' +
    `vs on with trace_sample_ratio 0.1 (10%); ${PINNED ? 'server on CPU 0, load generator on the others' : 'not pinned'}`,
)
try {
  await benchApi(telemetry)
  await benchTraining(telemetry)
} finally {
  await sink.close()
}
