// Persistence benchmark: the latency of one training step (forward_backward + optim_step through the TS
// client over loopback HTTP, on the embedded tiny model with the native engine) with the memory, file
// and Redis stores. With file and Redis every step is made durable before optim_step answers
// (durability: every_step: the adapter + optimizer state is written and fsynced, and the run record
// points at it). Prints median and mean per store and the ratio to memory (target: within 10 %).
// BENCH_STEPS (default 30) sets the measured steps; `--lora attn|all` picks the LoRA targets.

import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { loadConfig } from '../config/load.js'
import { buildApp } from '../core/app.js'
import { EMBEDDED_MODEL_NAME } from '../plugins/engines.js'
import { ALICE } from '../test/helpers/app.js'
import { startRedis } from '../test/helpers/redis.js'

const ROOT = new URL('../', import.meta.url).pathname
const STEPS = Number(process.env.BENCH_STEPS ?? 30)
const WARMUP = 5
/** Stores are measured in alternating rounds, so that drift on a shared machine hits each alike. */
const ROUNDS = 2

const { values } = parseArgs({ options: { lora: { type: 'string', default: 'all' } } })
const allTargets = values.lora !== 'attn'

async function measure(persistence: Record<string, unknown>, work: string): Promise<number[]> {
  const config = await loadConfig({
    cwd: work,
    env: {},
    overrides: {
      port: 0,
      log_level: 'warn',
      checkpoint_dir: join(work, 'checkpoints'),
      // The embedded model is generated once and cached in the repository's .tuft directory.
      model_cache_dir: join(ROOT, '.tuft', 'models'),
      authorized_users: { [ALICE]: 'alice' },
      persistence,
    },
  })
  const app = await buildApp(config, { configDir: work })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.models.loadAll()
  const address = app.server.address() as { port: number }
  const client = new ServiceClient({
    baseUrl: `http://127.0.0.1:${address.port}`,
    apiKey: ALICE,
    telemetry: false,
  })
  try {
    const training = await client.createLoraTrainingClient(EMBEDDED_MODEL_NAME, {
      rank: 8,
      seed: 1,
      trainMlp: allTargets,
      trainUnembed: allTargets,
    })
    const datum = datumFromTokens(Array.from({ length: 64 }, (_, i) => 100 + ((i * 37) % 500)))
    const times: number[] = []
    for (let step = 0; step < WARMUP + STEPS; step++) {
      const t0 = performance.now()
      const fb = training.forwardBackward([datum], 'cross_entropy')
      const optim = training.optimStep({ learning_rate: 1e-3 })
      await fb
      await optim
      if (step >= WARMUP) times.push(performance.now() - t0)
    }
    return times
  } finally {
    await client.close()
    await app.close()
  }
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return { median: sorted[Math.floor(sorted.length / 2)]!, mean: xs.reduce((a, b) => a + b, 0) / xs.length }
}

const work = mkdtempSync(join(ROOT, '.tuft', 'bench-persistence-'))
const redis = await startRedis()
try {
  const cases: [string, Record<string, unknown>][] = [
    ['memory', { mode: 'memory' }],
    ['file', { mode: 'file', file_path: join(work, 'state') }],
    ['redis', { mode: 'redis', redis_url: redis.url, namespace: 'bench' }],
  ]
  console.log(
    `step = forward_backward (64 tokens) + optim_step, LoRA rank 8 on ${allTargets ? 'attention, MLP and LM head' : 'attention'}, ${ROUNDS} × ${STEPS} steps per store`,
  )
  const times = new Map<string, number[]>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, persistence] of cases) {
      const more = await measure(persistence, join(work, `${name}-${round}`))
      times.set(name, [...(times.get(name) ?? []), ...more])
    }
  }
  let memory = 0
  for (const [name] of cases) {
    const s = stats(times.get(name)!)
    if (name === 'memory') memory = s.median
    const ratio = s.median / memory
    console.log(
      `${name.padEnd(7)} median ${s.median.toFixed(2).padStart(8)} ms   mean ${s.mean.toFixed(2).padStart(8)} ms   ` +
        `×${ratio.toFixed(3)} of memory${name === 'memory' ? '' : ratio <= 1.1 ? '   (within 10 %)' : '   (over the 10 % target)'}`,
    )
  }
} finally {
  await redis.stop()
  rmSync(work, { recursive: true, force: true })
}
