// The per-run metrics history behind the console's loss curves: one point per forward, forward_backward
// and optim_step with the metrics their futures reported, paged by position, owner only, bounded, and
// kept across a restart on the file store (the run then continues numbering where it stopped).

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import { keys } from '../core/domain/keys.js'
import { EngineRegistry } from '../core/registry.js'
import { RunMetrics } from '../core/services/run-metrics.js'
import { MemoryStore } from '../persistence/memory.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, BOB, startTestApp, testConfig } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

type Point = {
  n: number
  kind: string
  step: number
  seq_id: number
  time: string
  metrics: Record<string, number>
}
type Metrics = { training_run_id: string; created_time: string; last_step: number; points: Point[] }

async function ok(base: string, submitted: { json: { request_id: string } }) {
  const r = await result(base, ALICE, submitted.json.request_id)
  assert.equal(r.json.error, undefined, r.text)
  return r.json
}

async function newRun(base: string): Promise<string> {
  const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: {
      session_id: session,
      model_seq_id: 0,
      base_model: 'test/bigram',
      lora_config: { rank: 4, seed: 1 },
    },
  })
  await ok(base, created)
  return created.json.model_id as string
}

/** `steps` rounds of forward_backward + optim_step from seq_id `seq`; returns the losses reported. */
async function train(base: string, run: string, steps: number, seq = 1): Promise<number[]> {
  const losses: number[] = []
  for (let i = 0; i < steps; i++) {
    const fb = await ok(base, await postFwdBwd(base, ALICE, ceRequest(run, seq + 2 * i, [3, 5, 7, 9, 11])))
    losses.push(fb.metrics['loss:sum'])
    const optim = await call(base, 'POST', '/optim_step', {
      key: ALICE,
      json: { model_id: run, seq_id: seq + 2 * i + 1, adam_params: { learning_rate: 0.5 } },
    })
    await ok(base, optim)
  }
  return losses
}

async function metrics(base: string, run: string, query = '', key = ALICE) {
  return call(base, 'GET', `/training_runs/${encodeURIComponent(run)}/metrics${query}`, { key })
}

test('every operation adds a point with the metrics its future reported; pages by n; owner only', async () => {
  const t = await startTestApp()
  try {
    const base = await listen(t.app)
    const run = await newRun(base)
    const losses = await train(base, run, 3)
    await ok(base, await postFwdBwd(base, ALICE, ceRequest(run, 7, [3, 5, 7], true)))

    const all = (await metrics(base, run)).json as Metrics
    assert.equal(all.training_run_id, run)
    assert.ok(Date.parse(all.created_time) <= Date.now())
    assert.deepEqual(
      all.points.map((p) => [p.n, p.kind, p.step, p.seq_id]),
      [
        [0, 'forward_backward', 0, 1],
        [1, 'optim_step', 1, 2],
        [2, 'forward_backward', 1, 3],
        [3, 'optim_step', 2, 4],
        [4, 'forward_backward', 2, 5],
        [5, 'optim_step', 3, 6],
        [6, 'forward', 3, 7],
      ],
    )
    assert.deepEqual(
      all.points.filter((p) => p.kind === 'forward_backward').map((p) => p.metrics['loss:sum']),
      losses,
    )
    assert.deepEqual(Object.keys(all.points[1]!.metrics).sort(), [
      'grad_norm:mean',
      'learning_rate:mean',
      'step:max',
    ])
    assert.equal(all.last_step, 3)

    const page = (await metrics(base, run, '?after=4&limit=1')).json as Metrics
    assert.deepEqual(
      page.points.map((p) => p.n),
      [5],
    )
    const summary = (await metrics(base, run, '?limit=0')).json as Metrics
    assert.deepEqual(summary.points, [])
    assert.equal(summary.last_step, 3)

    assertError(await metrics(base, run, '', BOB), 404)
    assertError(await metrics(base, 's-0000000000000000:train:0'), 404)
    assertError(await metrics(base, run, '?after=x'), 400)
  } finally {
    await t.close()
  }
})

test('a history keeps its newest points, and the store drops whole chunks that aged out', async () => {
  const store = new MemoryStore()
  const runMetrics = new RunMetrics({ store, limit: 150, log: pino({ level: 'silent' }) })
  const history = await runMetrics.open('r1', true)
  for (let i = 0; i < 320; i++) {
    history.record({ kind: 'forward_backward', step: i, seq_id: i + 1, metrics: { 'loss:sum': i } })
  }
  await history.flush()
  assert.equal(history.points.length, 150)
  assert.equal(history.points[0]!.n, 170)
  // Kept: n 170..319, in chunks 1..3 (chunk 0, n 0..99, is gone; chunk 1 still holds n 100..199's tail).
  assert.deepEqual(
    (await store.scan(keys.runMetrics('r1'))).map((e) => e.key),
    [1, 2, 3].map((c) => keys.runMetric('r1', c)),
  )
  const stored = await runMetrics.stored('r1')
  assert.deepEqual(
    stored.map((p) => p.n),
    history.points.map((p) => p.n),
  )
  // A process that takes the run over continues the numbering.
  const resumed = await runMetrics.open('r1', false)
  resumed.record({ kind: 'optim_step', step: 320, seq_id: 321, metrics: {} })
  assert.equal(resumed.points.at(-1)!.n, 320)
})

test('the history survives a restart on the file store and continues where it stopped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-metrics-'))
  const boot = async () => {
    const config = await testConfig(dir, { persistence: { mode: 'file', file_path: join(dir, 'state') } })
    const registry = new EngineRegistry()
    registry.register(createEngineDouble('double'))
    const app = await buildApp(config, { registry, configDir: dir })
    await app.ready()
    await app.models.loadAll()
    return { app, base: await listen(app) }
  }
  try {
    const first = await boot()
    const run = await newRun(first.base)
    await train(first.base, run, 2)
    const before = ((await metrics(first.base, run)).json as Metrics).points
    await first.app.close()

    const second = await boot()
    try {
      const after = (await metrics(second.base, run)).json as Metrics
      assert.deepEqual(after.points, before)
      assert.equal(after.last_step, 2)
      await train(second.base, run, 1, 5)
      const more = ((await metrics(second.base, run, '?after=3')).json as Metrics).points
      assert.deepEqual(
        more.map((p) => [p.n, p.kind, p.step]),
        [
          [4, 'forward_backward', 2],
          [5, 'optim_step', 3],
        ],
      )
    } finally {
      await second.app.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
