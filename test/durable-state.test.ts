// DurableState on its own: each durable point replaces the previous state directory (removed off the
// operation's path, so it may linger for a moment), and a restore keeps only the state its pointer
// names, clearing what a crash left behind (older states, half-written temp dirs). Logged optimizer
// steps are replayed by a restore to exactly the state the run had, and the log is bounded.

import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import type { TrainingRunRecord } from '../core/domain/training-run.js'
import type { TrainingEngine } from '../core/engine.js'
import { DurableState, MAX_REPLAY_STEPS, stateDirOf } from '../core/services/durable-state.js'
import { toTrainItems } from '../core/services/train-items.js'
import { encodeForwardBackwardRequest } from '../core/wire/fwdbwd-request.js'
import { createNativeProvider } from '../engines/native/index.js'
import { MemoryStore } from '../persistence/memory.js'
import { MODEL } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { ceRequest } from './helpers/http.js'
import { embeddedModelDir } from './helpers/native-server.js'

const log = pino({ level: 'silent' })

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s')
    await new Promise((r) => setTimeout(r, 10))
  }
}

const lora = { rank: 2, alpha: 4, seed: 1, trainAttn: true, trainMlp: false, trainUnembed: false }
const options = { vocab_size: 8, max_context: 64, seed: 7, step_delay_ms: 0, load_delay_ms: 0 }

/** A run on the engine double and its DurableState in a temp root (removed afterwards). */
async function withDoubleRun(
  body: (t: {
    root: string
    restartEngine: () => Promise<TrainingEngine>
    engine: TrainingEngine
    run: TrainingRunRecord
    durable: DurableState
  }) => Promise<void>,
): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'tuft-durable-'))
  const store = new MemoryStore()
  try {
    const provider = createEngineDouble()
    const ctx = {
      modelName: MODEL,
      modelPath: root,
      maxModelLen: 64,
      maxLoraRank: 8,
      maxLoras: 32,
      maxBatchTokens: 16384,
      log,
    }
    const restartEngine = () => provider.createTraining!(options, ctx)
    const engine = await restartEngine()
    const run = newRun()
    await engine.createAdapter(run.id, lora)
    const durable = new DurableState({ store, root, durability: 'every_step', log })
    await body({ root, restartEngine, engine, run, durable })
  } finally {
    await store.close()
    rmSync(root, { recursive: true, force: true })
  }
}

function newRun(): TrainingRunRecord {
  const now = Date.now()
  return {
    ...{ id: 'run-1', owner: 'alice', sessionId: 's', modelSeqId: 0, baseModel: MODEL, lora },
    ...{ userMetadata: null, projectId: null, state: 'ready', createFutureId: 'f0', failure: null },
    ...{ createdAt: now, lastRequestAt: now },
  }
}

/** The adapter and optimizer files of the engine's run, as bytes. */
async function stateBytes(engine: TrainingEngine, id: string, dir: string): Promise<Buffer[]> {
  await engine.saveState(id, dir, { optimizer: true })
  return ['adapter_model.safetensors', 'optimizer.safetensors'].map((f) => readFileSync(join(dir, f)))
}

test('logged optimizer steps replay to the exact state; the log is bounded by full state writes', () =>
  withDoubleRun(async ({ root, restartEngine, engine, run, durable }) => {
    const adam = { learningRate: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.01, gradClipNorm: 0 }
    const limits = { vocabSize: 8, maxContext: 64 }
    let seq = 0
    const step = async (tokens: number[]) => {
      const req = ceRequest(run.id, ++seq, tokens)
      await engine.forwardBackward(toTrainItems(req, run.id, limits))
      const { step } = await engine.optimStep(run.id, adam)
      const passes = [encodeForwardBackwardRequest(req).toString('base64')]
      await durable.step(
        run,
        engine,
        { seqId: ++seq, futureId: `f${seq}`, step, result: {} },
        { passes, adam },
      )
    }
    await step([1, 2, 3, 4])
    assert.equal(run.durable?.replay, undefined, 'the first step writes the whole state')
    const written = run.durable!.dir
    for (const tokens of [
      [2, 3],
      [5, 6, 7],
      [1, 7],
    ])
      await step(tokens)
    assert.equal(run.durable!.dir, written, 'later steps are logged, not written')
    assert.equal(run.durable!.replay!.length, 3)
    assert.equal(run.durable!.step, 4)

    const restarted = await restartEngine()
    await durable.restore(run, restarted)
    assert.deepEqual(
      await stateBytes(restarted, run.id, join(root, 'restored')),
      await stateBytes(engine, run.id, join(root, 'live')),
      'weights, Adam moments and step counter',
    )

    // A step whose passes cannot be replayed exactly (they ran fused with other runs') writes the state.
    const { step: fusedStep } = await engine.optimStep(run.id, adam)
    await durable.step(run, engine, { seqId: ++seq, futureId: `f${seq}`, step: fusedStep, result: {} }, null)
    assert.equal(run.durable!.replay, undefined)
    assert.notEqual(run.durable!.dir, written)
    const rewritten = run.durable!.dir

    for (let i = 0; i < MAX_REPLAY_STEPS; i++) await step([3, 4, 5])
    assert.equal(run.durable!.replay!.length, MAX_REPLAY_STEPS)
    await step([3, 4, 5])
    assert.equal(run.durable!.replay, undefined, 'a full log makes the step write the whole state')
    assert.notEqual(run.durable!.dir, rewritten)
  }))

test('a durable point supersedes the previous state; a restore clears what a crash left', () =>
  withDoubleRun(async ({ root, restartEngine, engine, run, durable }) => {
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
    const restarted = await restartEngine()
    await durable.restore(run, restarted)
    await until(() => readdirSync(dir).length === 1)
    assert.ok(existsSync(join(dir, 'seq-3', 'optimizer.safetensors')), 'the pointer’s state stays whole')
  }))

test('on the native engine, replaying the log restores the run byte for byte', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tuft-durable-native-'))
  const store = new MemoryStore()
  const provider = createNativeProvider()
  const ctx = {
    modelName: 'tiny',
    modelPath: await embeddedModelDir(),
    maxModelLen: 128,
    maxLoraRank: 8,
    maxLoras: 32,
    maxBatchTokens: 16384,
    log,
  }
  const engine = await provider.createTraining!({ threads: 2 }, ctx)
  try {
    const all = { rank: 8, alpha: 16, seed: 1, trainAttn: true, trainMlp: true, trainUnembed: true }
    const run = { ...newRun(), lora: all }
    await engine.createAdapter(run.id, all)
    const durable = new DurableState({ store, root, durability: 'every_step', log })
    const adam = { learningRate: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, gradClipNorm: 1 }
    const limits = { vocabSize: engine.info.vocabSize, maxContext: 128 }
    let seq = 0
    for (let i = 0; i < 4; i++) {
      // Two passes per step: their gradients accumulate before the optimizer step.
      const passes: string[] = []
      for (const length of [24, 31]) {
        const tokens = Array.from({ length }, (_, j) => 100 + ((j * 37 + i * 11 + length) % 500))
        const req = ceRequest(run.id, ++seq, tokens)
        await engine.forwardBackward(toTrainItems(req, run.id, limits))
        passes.push(encodeForwardBackwardRequest(req).toString('base64'))
      }
      const { step } = await engine.optimStep(run.id, adam)
      await durable.step(
        run,
        engine,
        { seqId: ++seq, futureId: `f${seq}`, step, result: {} },
        { passes, adam },
      )
    }
    assert.equal(run.durable!.replay!.length, 3)
    const live = await stateBytes(engine, run.id, join(root, 'live'))
    // One native engine per model directory: the run is dropped and restored in the same engine.
    await engine.dropAdapter(run.id)
    await durable.restore(run, engine)
    assert.deepEqual(await stateBytes(engine, run.id, join(root, 'restored')), live)
  } finally {
    await engine.close()
    await store.close()
    rmSync(root, { recursive: true, force: true })
  }
})
