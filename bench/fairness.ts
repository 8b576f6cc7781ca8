// Fairness benchmark (issue 17): the real `tuft` process on loopback with the native engine, two users.
//  (a) Training: user B's small step (a 16-token forward_backward + optim_step, pipelined as the SDK
//      does) idle, then while user A keeps at least 32k training tokens queued: p50 and p99 ratios
//      (targets ≤ 3× and ≤ 5×).
//  (b) Sampling: B's single greedy 8-token sample idle, then while A floods asample: p50 ratio
//      (target ≤ 3×).
// Each ratio is against the idle figure measured in the same run. Prints figures; exits 0 whatever they
// are (the test suite checks the behaviour; speed is this machine's).
// The latency one user adds to another's is bounded by the slice of work in one engine call: on a CPU
// engine a call's time grows with its tokens and samples, so this runs with small bounds
// (max_batch_tokens 16, max_running_samples 8); on a GPU larger ones cost little latency.
// BENCH_PRESET: bench (Qwen3-0.6B dimensions, default) or tiny; BENCH_STEPS: B's steps per phase (8);
// BENCH_MAX_BATCH_TOKENS: server.max_batch_tokens (16); BENCH_RUNNING_SAMPLES:
// server.max_running_samples (8); BENCH_THREADS: engine threads (0: all cores).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { stringify } from 'yaml'
import { type Datum, datumFromTokens, ServiceClient } from '../client/index.js'
import { EMBEDDED_TOKENIZER_ID, ensureGeneratedModel, type PresetName } from '../engines/embedded-model.js'
import { startTuft } from '../test/helpers/tuft-process.js'

const PRESET = (process.env.BENCH_PRESET ?? 'bench') as PresetName
const STEPS = Math.max(3, Number(process.env.BENCH_STEPS ?? 8))
const MAX_BATCH_TOKENS = Number(process.env.BENCH_MAX_BATCH_TOKENS ?? 16)
const RUNNING_SAMPLES = Number(process.env.BENCH_RUNNING_SAMPLES ?? 8)
const THREADS = Number(process.env.BENCH_THREADS ?? 0)
/** A's queued training tokens never drop below this. */
const BACKLOG_TOKENS = 32_768
/** A's datums: half the budget, so that a call can hold one of A's and B's step beside it. */
const A_DATUM = Math.max(2, Math.floor(MAX_BATCH_TOKENS / 2))
/** A's forward_backward requests: 2048 tokens each. */
const A_REQUEST_DATUMS = Math.max(1, Math.floor(2048 / A_DATUM))
/** A's sample requests in flight during the flood. */
const FLOOD = 32
const MODEL = 'bench'
const KEYS = { a: 'tml-bench-user-a', b: 'tml-bench-user-b' }
const ROOT = new URL('..', import.meta.url).pathname

function tokens(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104_729 + 17) % 150_000)
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}

const ms = (x: number) => `${x.toFixed(0)} ms`

async function timedRuns(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn(i)
    out.push(performance.now() - t0)
  }
  return out
}

function report(what: string, idle: number[], loaded: number[], targets: { p50: number; p99?: number }) {
  const r50 = quantile(loaded, 0.5) / quantile(idle, 0.5)
  const r99 = quantile(loaded, 0.99) / quantile(idle, 0.99)
  console.log(
    `${what}: idle p50 ${ms(quantile(idle, 0.5))} p99 ${ms(quantile(idle, 0.99))}; ` +
      `loaded p50 ${ms(quantile(loaded, 0.5))} p99 ${ms(quantile(loaded, 0.99))}`,
  )
  const ok = (r: number, t: number) => (r <= t ? 'within target' : 'OVER target')
  console.log(`  ratio p50 ${r50.toFixed(2)}× (target ≤ ${targets.p50}×, ${ok(r50, targets.p50)})`)
  if (targets.p99 !== undefined) {
    console.log(`  ratio p99 ${r99.toFixed(2)}× (target ≤ ${targets.p99}×, ${ok(r99, targets.p99)})`)
  }
}

async function main(): Promise<void> {
  const modelPath = await ensureGeneratedModel(join(ROOT, '.tuft', 'models'), PRESET)
  const dir = mkdtempSync(join(tmpdir(), 'tuft-bench-fairness-'))
  const configPath = join(dir, 'tuft.yaml')
  writeFileSync(
    configPath,
    stringify({
      host: '127.0.0.1',
      port: 0,
      log_level: 'info',
      checkpoint_dir: join(dir, 'checkpoints'),
      authorized_users: { [KEYS.a]: 'user-a', [KEYS.b]: 'user-b' },
      supported_models: [
        {
          model_name: MODEL,
          model_path: modelPath,
          tokenizer_id: EMBEDDED_TOKENIZER_ID,
          max_model_len: 512,
          training: { provider: 'native', options: { threads: THREADS } },
          sampling: { provider: 'native', options: { threads: THREADS } },
        },
      ],
      server: {
        max_batch_tokens: MAX_BATCH_TOKENS,
        max_running_samples: RUNNING_SAMPLES,
        long_poll_timeout_ms: 5000,
      },
    }),
  )
  console.log(
    `model ${PRESET} (${modelPath}); max_batch_tokens ${MAX_BATCH_TOKENS}, max_running_samples ${RUNNING_SAMPLES}, ${STEPS} steps per phase`,
  )
  const server = await startTuft(configPath, dir)
  const a = new ServiceClient({ baseUrl: server.baseUrl, apiKey: KEYS.a, telemetry: false })
  const b = new ServiceClient({ baseUrl: server.baseUrl, apiKey: KEYS.b, telemetry: false })
  let stopping = false
  try {
    // (a) training
    const bRun = await b.createLoraTrainingClient(MODEL, { rank: 8, seed: 1 })
    const aRun = await a.createLoraTrainingClient(MODEL, { rank: 8, seed: 2 })
    /** How long B's forward_backward alone took, per step: tells queueing before it from after it. */
    const fbMs: number[] = []
    const bStep = (i: number) => {
      const t0 = performance.now()
      return Promise.all([
        bRun
          .forwardBackward([datumFromTokens(tokens(17, i))], 'cross_entropy')
          .then(() => fbMs.push(performance.now() - t0)),
        bRun.optimStep({ learning_rate: 1e-4 }),
      ])
    }
    await timedRuns(2, bStep) // warm-up
    const idleTrain = await timedRuns(STEPS, bStep)
    const idleFb = fbMs.splice(0).slice(2)

    const aRequest = (k: number): Datum[] =>
      Array.from({ length: A_REQUEST_DATUMS }, (_, i) => datumFromTokens(tokens(A_DATUM + 1, k * 1000 + i)))
    const requestTokens = A_REQUEST_DATUMS * A_DATUM
    const inFlight = Math.ceil(BACKLOG_TOKENS / requestTokens) + 1
    let submitted = 0
    // A keeps `inFlight` requests queued: whenever one finishes, another is sent.
    Array.from({ length: inFlight }, async () => {
      while (!stopping) await aRun.forwardBackward(aRequest(submitted++), 'cross_entropy').catch(() => {})
    })
    await sleep(2000)
    const loadedTrain = await timedRuns(STEPS, (i) => bStep(STEPS + i))
    console.log(
      `user A: ${inFlight} forward_backward requests of ${requestTokens} tokens kept queued (${inFlight * requestTokens} tokens), datums of ${A_DATUM}`,
    )
    report("training, B's 16-token forward_backward + optim_step", idleTrain, loadedTrain, { p50: 3, p99: 5 })
    console.log(
      `  of which forward_backward p50: idle ${ms(quantile(idleFb, 0.5))}, loaded ${ms(quantile(fbMs, 0.5))}`,
    )
  } finally {
    stopping = true
    await a.close()
    await b.close()
    await server.crash()
  }

  // (b) sampling, on a fresh server: A's training backlog would still be draining on the first one.
  const server2 = await startTuft(configPath, dir)
  const a2 = new ServiceClient({ baseUrl: server2.baseUrl, apiKey: KEYS.a, telemetry: false })
  const b2 = new ServiceClient({ baseUrl: server2.baseUrl, apiKey: KEYS.b, telemetry: false })
  let flooding = true
  try {
    const bSampler = await b2.createSamplingClient({ baseModel: MODEL })
    const aSampler = await a2.createSamplingClient({ baseModel: MODEL })
    const bSample = (i: number) =>
      bSampler.sample(tokens(8, i), 1, { max_tokens: 8, temperature: 0, seed: 1 })
    await timedRuns(2, bSample)
    const idleSample = await timedRuns(STEPS, bSample)
    let floodSent = 0
    Array.from({ length: FLOOD }, async () => {
      while (flooding) {
        await aSampler
          .sample(tokens(16, 5000 + floodSent++), 4, { max_tokens: 64, temperature: 1, seed: floodSent })
          .catch(() => {})
      }
    })
    await sleep(2000)
    const loadedSample = await timedRuns(STEPS, (i) => bSample(STEPS + i))
    console.log(`user A: ${FLOOD} asample requests in flight (4 samples × 64 tokens each), ${floodSent} sent`)
    report("sampling, B's greedy 8-token sample", idleSample, loadedSample, { p50: 3 })
  } finally {
    flooding = false
    await a2.close()
    await b2.close()
    await server2.crash()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
