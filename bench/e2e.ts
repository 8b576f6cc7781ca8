// End-to-end CPU throughput through the server: the real `tuft` process on loopback with the native
// engine, driven by our TS client as a user drives it, on generated Qwen3 models:
//  (a) training: forward_backward + optim_step of 4 × 256 tokens on a rank-32 adapter;
//  (b) sampling: c concurrent requests (64-token prompts, 64 new tokens each, temperature 1, the
//      rank-32 adapter) at c = 1, 8, 32.
// With TUFT_REF_PYTHON naming a Python that has torch, transformers and peft, bench/e2e_reference.py
// does the same work in PyTorch + PEFT (training steps; `generate` at batch c) on the same weights,
// interleaved round by round with ours, and the ratios are printed; otherwise they are skipped with
// the reason. The machine may be shared, so each figure is the best of the rounds, printed beside the
// CPU seconds the process used per 1000 tokens (wall time of a loaded machine moves, CPU time less so).
// Knobs: BENCH_E2E_SHAPES=small,qwen3-0.6b (default small: the 0.6B shape takes minutes per round),
// BENCH_E2E_ROUNDS (2), BENCH_E2E_STEPS training steps per round (3), BENCH_E2E_CONCURRENCY (1,8,32),
// BENCH_E2E_THREADS engine and torch threads (2); BENCH_E2E_SERVER_LOG=FILE keeps the server's output
// (with TUFT_SAMPLER_PROFILE=1 in the environment, the sampler's per-step phase times: bench/README.md).

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface, type Interface } from 'node:readline'
import { stringify } from 'yaml'
import { datumFromTokens, type SamplingClient, ServiceClient, type TrainingClient } from '../client/index.js'
import { EMBEDDED_TOKENIZER_ID, ensureGeneratedModel, type PresetName } from '../engines/embedded-model.js'
import { startTuft } from '../test/helpers/tuft-process.js'

const SHAPES: Record<string, PresetName> = { small: 'small', 'qwen3-0.6b': 'bench' }
const shapes = (process.env.BENCH_E2E_SHAPES ?? 'small').split(',').map((s) => s.trim())
for (const s of shapes) if (!(s in SHAPES)) throw new Error(`BENCH_E2E_SHAPES: unknown shape ${s}`)
const ROUNDS = Math.max(1, Number(process.env.BENCH_E2E_ROUNDS ?? 2))
const STEPS = Math.max(1, Number(process.env.BENCH_E2E_STEPS ?? 3))
const CONCURRENCY = (process.env.BENCH_E2E_CONCURRENCY ?? '1,8,32').split(',').map(Number)
const THREADS = Math.max(1, Number(process.env.BENCH_E2E_THREADS ?? 2))
const BATCH = 4
const SEQ = 256
const RANK = 32
const PROMPT = 64
const NEW_TOKENS = 64
const ROOT = new URL('..', import.meta.url).pathname
const API_KEY = 'tml-bench-e2e'

/** One measurement: tokens over wall seconds, and the CPU seconds its process spent. */
interface Run {
  tokens: number
  wall: number
  cpu: number
}

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim() || 100)

/** CPU seconds (user + system, all threads) the process has used so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS
}

/** The most resident memory the process has held so far, in GiB (Linux /proc: VmHWM). */
function peakGiB(pid: number): string {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return kb === undefined ? '?' : (Number(kb) / 2 ** 20).toFixed(1)
}

async function measure(pid: number, tokens: number, work: () => Promise<unknown>): Promise<Run> {
  const c0 = cpuSeconds(pid)
  const t0 = performance.now()
  await work()
  return { tokens, wall: (performance.now() - t0) / 1000, cpu: cpuSeconds(pid) - c0 }
}

/** Deterministic ids spread over the vocabulary, distinct per salt. */
function tokens(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 17) % 150000)
}

// ---- ours: the server and the TS client ---------------------------------------------------------------

interface Ours {
  pid: number
  training: TrainingClient
  sampler: SamplingClient
  stop(): Promise<void>
}

async function startOurs(modelName: string, modelDir: string): Promise<Ours> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-bench-e2e-'))
  const engine = { provider: 'native', options: { threads: THREADS } }
  const config = {
    host: '127.0.0.1',
    port: 0,
    log_level: 'info',
    checkpoint_dir: join(dir, 'checkpoints'),
    model_cache_dir: join(dir, 'models'),
    authorized_users: { [API_KEY]: 'bench' },
    supported_models: [
      {
        model_name: modelName,
        model_path: modelDir,
        tokenizer_id: EMBEDDED_TOKENIZER_ID,
        training: engine,
        sampling: engine,
      },
    ],
    server: { sample_queue_limit: 4096 },
  }
  writeFileSync(join(dir, 'tuft.yaml'), stringify(config))
  const server = await startTuft(join(dir, 'tuft.yaml'), dir)
  const client = new ServiceClient({ baseUrl: server.baseUrl, apiKey: API_KEY, telemetry: false })
  const training = await client.createLoraTrainingClient(modelName, { rank: RANK, seed: 1 })
  await trainSteps(training, 1) // warm-up, and B ≠ 0 so the adapter's products are real work
  const sampler = await training.saveWeightsAndGetSamplingClient()
  await sampler.sample(tokens(8, 0), 1, { max_tokens: 2 })
  return {
    pid: server.proc.pid!,
    training,
    sampler,
    async stop() {
      await client.close()
      await server.stop()
      const logFile = process.env.BENCH_E2E_SERVER_LOG
      if (logFile) writeFileSync(logFile, server.output())
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function trainSteps(training: TrainingClient, steps: number): Promise<void> {
  const data = Array.from({ length: BATCH }, (_, i) => datumFromTokens(tokens(SEQ + 1, i)))
  for (let s = 0; s < steps; s++) {
    await training.forwardBackward(data, 'cross_entropy')
    await training.optimStep({ learning_rate: 1e-4 })
  }
}

const oursTrain = (o: Ours) => measure(o.pid, STEPS * BATCH * SEQ, () => trainSteps(o.training, STEPS))

const oursSample = (o: Ours, c: number, round: number) =>
  measure(o.pid, c * NEW_TOKENS, () =>
    Promise.all(
      Array.from({ length: c }, (_, i) =>
        o.sampler.sample(tokens(PROMPT, 1000 + round * 64 + i), 1, {
          max_tokens: NEW_TOKENS,
          temperature: 1,
          seed: round * 1000 + i,
        }),
      ),
    ).then((results) => {
      for (const r of results) {
        const n = r.sequences[0]!.tokens.length
        if (n !== NEW_TOKENS) throw new Error(`a sample stopped after ${n} of ${NEW_TOKENS} tokens`)
      }
    }),
  )

// ---- the reference: PyTorch + transformers + PEFT -------------------------------------------------------

interface Reference {
  pid: number
  call(op: Record<string, unknown>): Promise<Run>
  stop(): Promise<void>
}

/** bench/e2e_reference.py as a long-lived process: one JSON line in, one JSON line out per op. */
async function startReference(python: string, modelDir: string): Promise<Reference> {
  const proc: ChildProcess = spawn(python, [join(ROOT, 'bench', 'e2e_reference.py'), modelDir], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, TUFT_REF_THREADS: String(THREADS) },
  })
  const lines: Interface = createInterface({ input: proc.stdout! })
  const pending: Array<(line: string) => void> = []
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  lines.on('line', (line) => pending.shift()?.(line))
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      pending.push((line) => resolve(JSON.parse(line) as Record<string, unknown>))
      void exited.then(() => reject(new Error('the reference process exited')))
    })
  const ready = await next()
  if (ready.error) throw new Error(`reference: ${String(ready.error)}`)
  const call = async (op: Record<string, unknown>): Promise<Run> => {
    const c0 = cpuSeconds(proc.pid!)
    proc.stdin!.write(`${JSON.stringify(op)}\n`)
    const r = await next()
    if (r.error) throw new Error(`reference ${String(op.op)}: ${String(r.error)}`)
    return { tokens: Number(r.tokens), wall: Number(r.seconds), cpu: cpuSeconds(proc.pid!) - c0 }
  }
  // Warm-up: first calls allocate and pick kernels.
  await call({ op: 'train', steps: 1, batch: BATCH, seq: SEQ })
  await call({ op: 'generate', batch: 2, prompt: 8, new_tokens: 2 })
  return {
    pid: proc.pid!,
    call,
    async stop() {
      proc.stdin!.end()
      await exited
    },
  }
}

/** Why the reference is skipped, or undefined when TUFT_REF_PYTHON has what it needs. */
function referenceUnavailable(): string | undefined {
  const python = process.env.TUFT_REF_PYTHON
  if (!python) return 'TUFT_REF_PYTHON is not set (a Python with torch, transformers and peft)'
  const probe = spawnSync(python, ['-c', 'import torch, transformers, peft, safetensors'], {
    encoding: 'utf8',
  })
  if (probe.status !== 0)
    return `${python} cannot import torch, transformers, peft, safetensors: ${probe.stderr.trim().split('\n').pop()}`
  return undefined
}

// ---- report ----------------------------------------------------------------------------------------------

const rate = (r: Run) => r.tokens / r.wall
const cpuPerK = (r: Run) => (1000 * r.cpu) / r.tokens
const best = (runs: Run[]) => runs.reduce((a, b) => (rate(b) > rate(a) ? b : a))
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))

function line(label: string, ours: Run[], ref: Run[] | undefined, extra = ''): void {
  const o = best(ours)
  let text = `${label.padEnd(22)} ours ${fmt(rate(o)).padStart(6)} tok/s (${fmt(cpuPerK(o))} CPU-s/1k tok)`
  if (ref) {
    const r = best(ref)
    text +=
      `  reference ${fmt(rate(r)).padStart(6)} tok/s (${fmt(cpuPerK(r))} CPU-s/1k tok)` +
      `  ratio ${fmt(rate(o) / rate(r))}x wall, ${fmt(cpuPerK(r) / cpuPerK(o))}x CPU`
  }
  console.log(`${text}${extra}  [wall per round: ${ours.map((x) => fmt(rate(x))).join('/')}]`)
}

async function benchShape(shape: string, refReason: string | undefined): Promise<void> {
  const preset = SHAPES[shape]!
  const modelDir = await ensureGeneratedModel(join(ROOT, '.tuft', 'models'), preset)
  console.log(`\n--- shape ${shape} (${modelDir}); ${ROUNDS} rounds, best of them; ${THREADS} threads ---`)
  const ours = await startOurs(`bench/${shape}`, modelDir)
  let ref: Reference | undefined
  try {
    if (refReason === undefined) ref = await startReference(process.env.TUFT_REF_PYTHON!, modelDir)
    const train: { ours: Run[]; ref: Run[] } = { ours: [], ref: [] }
    const sample = new Map(CONCURRENCY.map((c) => [c, { ours: [] as Run[], ref: [] as Run[] }]))
    for (let round = 0; round < ROUNDS; round++) {
      train.ours.push(await oursTrain(ours))
      if (ref) train.ref.push(await ref.call({ op: 'train', steps: STEPS, batch: BATCH, seq: SEQ }))
      for (const c of CONCURRENCY) {
        const s = sample.get(c)!
        s.ours.push(await oursSample(ours, c, round))
        if (ref)
          s.ref.push(await ref.call({ op: 'generate', batch: c, prompt: PROMPT, new_tokens: NEW_TOKENS }))
      }
    }
    // Issue 14 sets its targets on the bench shape only; the other shapes print their figures bare.
    const targeted = shape === 'small'
    line(
      `train ${BATCH}x${SEQ} r${RANK}`,
      train.ours,
      ref && train.ref,
      targeted && ref ? ' (target >= 2x)' : '',
    )
    for (const c of CONCURRENCY) {
      const s = sample.get(c)!
      const target = targeted && c === 32 && ref ? ' (target >= 3x)' : ''
      line(`sample c=${c}`, s.ours, ref && s.ref, target)
    }
    const lo = sample.get(Math.min(...CONCURRENCY))!
    const hi = sample.get(Math.max(...CONCURRENCY))!
    if (CONCURRENCY.length > 1) {
      console.log(
        `sample c=${Math.max(...CONCURRENCY)} / c=${Math.min(...CONCURRENCY)}  ours ${fmt(rate(best(hi.ours)) / rate(best(lo.ours)))}x` +
          (targeted ? ' (target >= 8x for 32 / 1)' : ''),
      )
    }
    const refPeak = ref ? `, reference ${peakGiB(ref.pid)} GiB` : ''
    console.log(`peak resident memory: ours ${peakGiB(ours.pid)} GiB${refPeak}`)
  } finally {
    await ref?.stop()
    await ours.stop()
  }
}

const refReason = referenceUnavailable()
console.log(
  `end-to-end through the server (TS client, loopback): training ${BATCH}x${SEQ} tokens, rank ${RANK};` +
    ` sampling ${PROMPT}-token prompts + ${NEW_TOKENS} new tokens at c = ${CONCURRENCY.join(', ')}`,
)
if (refReason !== undefined) console.log(`reference skipped: ${refReason}`)
for (const shape of shapes) await benchShape(shape, refReason)
