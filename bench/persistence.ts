// Persistence benchmark: the latency of one training step (forward_backward + optim_step through the TS
// client over loopback HTTP, on the embedded tiny model with the native engine) with the memory, file
// and Redis stores. With file and Redis every step is made durable before optim_step answers
// (durability: every_step: the adapter + optimizer state is written and fsynced, and the run record
// points at it). Prints median and mean per store and the ratio to memory (target: within 10 %).
// The three servers run side by side in this process and take turns step by step (the order rotating),
// so that load from elsewhere on a shared machine hits each store alike.
// BENCH_STEPS (default 40) sets the measured steps per store; `--lora attn|all` picks the LoRA targets.

import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { loadConfig } from '../config/load.js'
import { EMBEDDED_MODEL_NAME } from '../engines/embedded-model.js'
import { buildApp } from '../plugins/app.js'
import { ALICE } from '../test/helpers/app.js'
import { startRedis } from '../test/helpers/redis.js'

const ROOT = new URL('../', import.meta.url).pathname
const STEPS = Number(process.env.BENCH_STEPS ?? 40)
const WARMUP = 5

const { values } = parseArgs({ options: { lora: { type: 'string', default: 'all' } } })
const allTargets = values.lora !== 'attn'

interface Bench {
  /** Runs one training step: forward_backward + optim_step, both submitted, then both awaited. */
  step(): Promise<void>
  close(): Promise<void>
}

async function start(persistence: Record<string, unknown>, work: string): Promise<Bench> {
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
  const training = await client.createLoraTrainingClient(EMBEDDED_MODEL_NAME, {
    rank: 8,
    seed: 1,
    trainMlp: allTargets,
    trainUnembed: allTargets,
  })
  const datum = datumFromTokens(Array.from({ length: 64 }, (_, i) => 100 + ((i * 37) % 500)))
  return {
    async step() {
      const fb = training.forwardBackward([datum], 'cross_entropy')
      const optim = training.optimStep({ learning_rate: 1e-3 })
      await fb
      await optim
    },
    async close() {
      await client.close()
      await app.close()
    },
  }
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b)
  return { median: sorted[Math.floor(sorted.length / 2)]!, mean: xs.reduce((a, b) => a + b, 0) / xs.length }
}

const work = mkdtempSync(join(ROOT, '.tuft', 'bench-persistence-'))
const redis = await startRedis()
const benches: [string, Bench][] = []
try {
  const cases: [string, Record<string, unknown>][] = [
    ['memory', { mode: 'memory' }],
    ['file', { mode: 'file', file_path: join(work, 'state') }],
    ['redis', { mode: 'redis', redis_url: redis.url, namespace: 'bench' }],
  ]
  console.log(
    `step = forward_backward (64 tokens) + optim_step, LoRA rank 8 on ${allTargets ? 'attention, MLP and LM head' : 'attention'}, ${STEPS} steps per store, taking turns`,
  )
  for (const [name, persistence] of cases) benches.push([name, await start(persistence, join(work, name))])
  const times = new Map<string, number[]>(cases.map(([name]) => [name, []]))
  for (let step = 0; step < WARMUP + STEPS; step++) {
    for (let k = 0; k < benches.length; k++) {
      const [name, bench] = benches[(step + k) % benches.length]!
      const t0 = performance.now()
      await bench.step()
      if (step >= WARMUP) times.get(name)!.push(performance.now() - t0)
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
  for (const [, bench] of benches) await bench.close()
  await redis.stop()
  rmSync(work, { recursive: true, force: true })
}
