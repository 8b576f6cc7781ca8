// Sampling through engines/vllm against the native sampler, in one run: decode throughput at concurrency
// 1/8/32 of the native engine called directly, then of the vllm provider driving a second process (the
// vLLM stand-in: a tuft server on the same model, speaking vLLM's API), and the time from a training
// snapshot exported for sampling (save_weights_and_get_sampling_client) to its first token through vLLM.
// The two runs take turns, never overlap. Prints figures; asserts nothing about speed.
//   node --import tsx bench/vllm.ts [--preset bench|tiny] [--decode N] [--reps N]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import type { EngineContext, SampleJob, SamplingEngine } from '../core/engine.js'
import { ensureGeneratedModel, type PresetName } from '../engines/embedded-model.js'
import { createNativeProvider } from '../engines/native/index.js'
import { createVllmProvider } from '../engines/vllm/index.js'
import { sampleJob } from '../test/helpers/sample-job.js'

const { values: args } = parseArgs({
  options: {
    preset: { type: 'string', default: 'bench' },
    decode: { type: 'string', default: '32' },
    reps: { type: 'string', default: '2' },
  },
})
const DECODE = Number(args.decode)
const REPS = Math.max(1, Number(args.reps))
const ROOT = new URL('..', import.meta.url).pathname
const STAND_IN = join(ROOT, 'test/helpers/vllm-stand-in.ts')

const prompt = (n: number, salt: number) =>
  Int32Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 17) % 150000)
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now()
  const r = await fn()
  return [r, (performance.now() - t0) / 1000]
}

/** Generated tokens per second with c concurrent requests of DECODE tokens each (best of REPS). */
async function throughput(engine: SamplingEngine, c: number): Promise<number> {
  const jobs = () =>
    Array.from({ length: c }, (_, i): SampleJob => sampleJob(prompt(16, 100 + i), { maxTokens: DECODE }))
  let best = 0
  for (let r = 0; r < REPS; r++) {
    const [results, s] = await timed(() => Promise.all(jobs().map((j) => engine.sample(j))))
    const tokens = results.reduce((n, res) => n + res.sequences[0]!.tokens.length, 0)
    best = Math.max(best, tokens / s)
  }
  return best
}

async function main(): Promise<void> {
  const modelPath = await ensureGeneratedModel(join(ROOT, '.tuft', 'models'), args.preset as PresetName)
  const dir = mkdtempSync(join(tmpdir(), 'bench-vllm-'))
  const ctx: EngineContext = {
    modelName: 'bench',
    modelPath,
    maxModelLen: 0,
    maxLoraRank: 16,
    maxLoras: 4,
    maxBatchTokens: 16384,
    log: pino({ level: 'silent' }),
  }
  const native = createNativeProvider()
  const training = await native.createTraining!({}, ctx)
  const direct = await native.createSampling!({}, ctx)
  const vllm = await createVllmProvider().createSampling!(
    {
      api_key: 'tml-bench-key',
      launch: {
        command: [process.execPath, '--import', import.meta.resolve('tsx'), STAND_IN],
        args: [],
        env: {},
        port: 0,
        startup_timeout_ms: 600_000,
        max_restart_backoff_ms: 30_000,
      },
      adapter_dir: join(dir, 'adapters'),
      max_logprobs: 20,
      request_timeout_ms: 600_000,
    },
    ctx,
  )
  console.log(
    `model ${modelPath} (${direct.info.device}); decode ${DECODE} tokens per request, best of ${REPS}`,
  )
  try {
    for (const engine of [direct, vllm]) await engine.sample(sampleJob(prompt(8, 0), { maxTokens: 2 }))
    console.log('concurrency   native tokens/s   via vllm tokens/s   HTTP path cost')
    for (const c of [1, 8, 32]) {
      const a = await throughput(direct, c)
      const b = await throughput(vllm, c)
      console.log(
        `${String(c).padStart(11)}   ${fmt(a).padStart(15)}   ${fmt(b).padStart(17)}   ${fmt((1 - b / a) * 100).padStart(13)}%`,
      )
    }
    // save_weights_and_get_sampling_client with a different sampling provider: export the adapter as PEFT
    // files, stage and load them on the vLLM side, first token.
    await training.createAdapter('run', {
      rank: 16,
      alpha: 32,
      seed: 1,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: false,
    })
    const firsts: number[] = []
    for (let r = 0; r < REPS; r++) {
      const [, s] = await timed(async () => {
        const peft = join(dir, `snapshot-${r}`)
        await training.exportAdapter('run', peft)
        const id = `snapshot-${r}`
        const ref = { kind: 'peft' as const, id, uri: await vllm.staging!.stage(id, peft) }
        await vllm.loadAdapter(ref)
        await vllm.sample(sampleJob(prompt(16, 7), { maxTokens: 1, adapter: ref }))
      })
      firsts.push(s * 1000)
    }
    console.log(
      `save_weights_and_get_sampling_client → first token via vllm: ${firsts.map((ms) => `${fmt(ms)} ms`).join(', ')}`,
    )
  } finally {
    await vllm.close()
    await direct.close()
    await training.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
