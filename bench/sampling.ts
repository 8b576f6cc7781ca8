// Sampling benchmark of the native engine: prefill and decode throughput at several concurrencies,
// the cost of 8 distinct LoRA adapters in one batch against the base model alone, and the time from
// a training snapshot to its first sampled token. Prints figures; asserts nothing about speed.
//   node --import tsx bench/sampling.ts [--preset tiny|small|bench] [--model DIR] [--threads N] [--reps N]
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import type { SampleJob, SamplingEngine, TrainingEngine } from '../core/engine.js'
import { ensureGeneratedModel, PRESETS, type PresetName } from '../engines/embedded-model.js'
import { createNativeProvider } from '../engines/native/index.js'
import { sampleJob } from '../test/helpers/sample-job.js'

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'bench' },
    model: { type: 'string' },
    threads: { type: 'string', default: '0' },
    prompt: { type: 'string', default: '256' },
    decode: { type: 'string', default: '32' },
    reps: { type: 'string', default: '2' },
  },
})
if (!(args.preset in PRESETS)) throw new Error(`--preset is one of ${Object.keys(PRESETS).join(', ')}`)
const PROMPT = Number(args.prompt)
const DECODE = Number(args.decode)
const REPS = Math.max(1, Number(args.reps))
const ROOT = new URL('..', import.meta.url).pathname

function prompt(n: number, salt: number): Int32Array {
  // Deterministic ids spread over the vocabulary; distinct per request so nothing is shared.
  return Int32Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 17) % 150000)
}

const job = (p: Int32Array, maxTokens: number, adapterId: string | null = null): SampleJob =>
  sampleJob(p, { maxTokens, adapter: adapterId === null ? null : { kind: 'snapshot', id: adapterId } })

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const r = await fn()
  return [r, (performance.now() - t0) / 1000]
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))

async function main(): Promise<void> {
  const modelPath =
    args.model ?? (await ensureGeneratedModel(join(ROOT, '.tuft', 'models'), args.preset as PresetName))
  const provider = createNativeProvider()
  const ctx = {
    modelName: 'bench',
    modelPath,
    maxModelLen: 0,
    maxLoraRank: 64,
    maxLoras: 32,
    maxBatchTokens: 16384,
    log: pino({ level: 'silent' }),
  }
  const cfg = { threads: Number(args.threads) }
  const [training, openSeconds] = await timed(() => provider.createTraining!(cfg, ctx))
  const sampling: SamplingEngine = await provider.createSampling!(cfg, ctx)
  console.log(`model ${modelPath}`)
  console.log(`engine ${training.info.device}, arch ${training.info.arch}, opened in ${fmt(openSeconds)} s`)

  try {
    await sampling.sample(job(prompt(8, 0), 2)) // warm-up: KV cache allocation, first-touch pages

    // Prefill: one long prompt, one generated token.
    const [, prefillSeconds] = await timed(() => sampling.sample(job(prompt(PROMPT, 1), 1)))
    console.log(`prefill           ${PROMPT} tokens: ${fmt(PROMPT / prefillSeconds)} tokens/s`)

    // Decode: c concurrent requests with short prompts, DECODE tokens each, less the same requests
    // with one token (their prefill), so the rate is decode only. Best of REPS; the machine may be
    // shared, so the worst is printed beside it.
    const rate: Record<number, number> = {}
    for (const c of [1, 8, 32]) {
      const jobs = (n: number) => Array.from({ length: c }, (_, i) => job(prompt(16, 100 + i), n))
      const steps: number[] = []
      for (let r = 0; r < REPS; r++) {
        const [, one] = await timed(() => Promise.all(jobs(1).map((j) => sampling.sample(j))))
        const [, all] = await timed(() => Promise.all(jobs(DECODE).map((j) => sampling.sample(j))))
        steps.push((all - one) / (DECODE - 1))
      }
      const best = Math.min(...steps)
      rate[c] = c / best
      console.log(
        `decode c=${String(c).padEnd(2)}       ${fmt(rate[c])} tokens/s (${fmt(best * 1000)} ms per step;` +
          ` worst of ${REPS}: ${fmt(Math.max(...steps) * 1000)} ms; prefill of the 16-token prompts excluded)`,
      )
    }
    console.log(`decode c=32 / c=1   ${fmt(rate[32]! / rate[1]!)}x (target >= 8x)`)

    // 8 distinct adapters in one batch against the base model alone (prefill + DECODE tokens each),
    // interleaved, best of REPS each.
    const ids = await makeAdapters(training, 8)
    const base = Array.from({ length: 8 }, (_, i) => job(prompt(16, 200 + i), DECODE))
    const mixed = base.map((j, i) => ({ ...j, adapter: { kind: 'snapshot' as const, id: ids[i]! } }))
    const baseTimes: number[] = []
    const mixedTimes: number[] = []
    for (let r = 0; r < REPS; r++) {
      baseTimes.push((await timed(() => Promise.all(base.map((j) => sampling.sample(j)))))[1])
      mixedTimes.push((await timed(() => Promise.all(mixed.map((j) => sampling.sample(j)))))[1])
    }
    const baseSeconds = Math.min(...baseTimes)
    const mixedSeconds = Math.min(...mixedTimes)
    console.log(
      `8 adapters (r16)  ${fmt((8 * DECODE) / mixedSeconds)} tokens/s vs base ${fmt((8 * DECODE) / baseSeconds)}` +
        ` (${fmt((mixedSeconds / baseSeconds - 1) * 100)}% slower, best of ${REPS} each; target <= 15%;` +
        ` runs: base ${baseTimes.map(fmt).join('/')} s, adapters ${mixedTimes.map(fmt).join('/')} s)`,
    )

    // Snapshot of a training adapter to its first sampled token.
    const [, firstSeconds] = await timed(async () => {
      await training.snapshotAdapter!(ids[0]!.replace('@s', ''), 'fresh@s')
      await sampling.loadAdapter({ kind: 'snapshot', id: 'fresh@s' })
      await sampling.sample(job(prompt(16, 300), 1, 'fresh@s'))
    })
    console.log(`snapshot → first token: ${fmt(firstSeconds * 1000)} ms`)
  } finally {
    await training.close()
    await sampling.close()
  }
}

/** n trained-looking adapters (one AdamW step each, so B ≠ 0) and their sampler snapshots. */
async function makeAdapters(training: TrainingEngine, n: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const id = `a${i}`
    await training.createAdapter(id, {
      rank: 16,
      alpha: 32,
      seed: i,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: false,
    })
    const tokens = prompt(9, 400 + i)
    await training.forwardBackward([
      {
        adapterId: id,
        tokens: tokens.subarray(0, 8),
        targets: tokens.subarray(1),
        k: 1,
        lossFn: 'cross_entropy',
        lossConfig: {},
        forwardOnly: false,
      },
    ])
    await training.optimStep(id, {
      learningRate: 1e-3,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0,
      gradClipNorm: 0,
    })
    await training.snapshotAdapter!(id, `${id}@s`)
    ids.push(`${id}@s`)
  }
  return ids
}

await main()
