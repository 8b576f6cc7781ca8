// DurableState on its own: each durable point replaces the previous state directory (removed off the
// operation's path, so it may linger for a moment), and a restore keeps only the state its pointer
// names, clearing what a crash left behind (older states, half-written temp dirs).

import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import type { TrainingRunRecord } from '../core/domain/training-run.js'
import { DurableState, stateDirOf } from '../core/services/durable-state.js'
import { MemoryStore } from '../persistence/memory.js'
import { MODEL } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'

const log = pino({ level: 'silent' })

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s')
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('a durable point supersedes the previous state; a restore clears what a crash left', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tuft-durable-'))
  const store = new MemoryStore()
  try {
    const provider = createEngineDouble()
    const ctx = { modelName: MODEL, modelPath: root, maxModelLen: 64, maxLoraRank: 8, log }
    const options = { vocab_size: 8, max_context: 64, seed: 7, step_delay_ms: 0, load_delay_ms: 0 }
    const engine = await provider.createTraining!(options, ctx)
    const lora = { rank: 2, alpha: 4, seed: 1, trainAttn: true, trainMlp: false, trainUnembed: false }
    const now = Date.now()
    const run: TrainingRunRecord = {
      ...{ id: 'run-1', owner: 'alice', sessionId: 's', modelSeqId: 0, baseModel: MODEL, lora },
      ...{ userMetadata: null, projectId: null, state: 'ready', createFutureId: 'f0', failure: null },
      ...{ createdAt: now, lastRequestAt: now },
    }
    await engine.createAdapter(run.id, lora)
    const durable = new DurableState({ store, root, durability: 'every_step', log })
    const dir = join(root, stateDirOf(run))
    for (const seqId of [1, 2, 3]) {
      await durable.commit(run, engine, { seqId, futureId: `f${seqId}`, step: seqId, result: {} })
    }
    assert.equal(run.durable?.dir, join(stateDirOf(run), 'seq-3'))
    await until(() => readdirSync(dir).length === 1)
    assert.deepEqual(readdirSync(dir), ['seq-3'])

    // What a crash can leave: an older state, a temp dir of a write cut short.
    mkdirSync(join(dir, 'seq-2'))
    mkdirSync(join(dir, '.tmp-cut-short'))
    const restarted = await provider.createTraining!(options, ctx)
    await durable.restore(run, restarted)
    await until(() => readdirSync(dir).length === 1)
    assert.ok(existsSync(join(dir, 'seq-3', 'optimizer.safetensors')), 'the pointer’s state stays whole')
  } finally {
    await store.close()
    rmSync(root, { recursive: true, force: true })
  }
})
