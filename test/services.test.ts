// Service behaviours over real HTTP and in-process: long-polling futures and their encodings, failed
// futures, session idempotency and expiry, dropping sample requests whose client went away, TTL
// garbage collection of checkpoint files, and the events services announce.

import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { EngineRegistry } from '../core/registry.js'
import { SNAPSHOTS_KEPT_PER_RUN } from '../core/services/samplers.js'
import { decodeForwardBackwardOutput } from '../core/wire/proto.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, BOB, MODEL, startTestApp, type TestApp, testConfig } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

async function withApp(
  overrides: Record<string, unknown>,
  double: Record<string, unknown>,
  body: (t: TestApp, base: string) => Promise<void>,
): Promise<void> {
  const t = await startTestApp(overrides, double)
  try {
    await body(t, await listen(t.app))
  } finally {
    await t.close()
  }
}

async function newRun(base: string, key = ALICE): Promise<{ session: string; run: string }> {
  const session = (await call(base, 'POST', '/create_session', { key, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
  })
  await result(base, key, created.json.request_id)
  return { session, run: created.json.model_id }
}

test('retrieve_future long-polls, answers try_again with queue_state, then protobuf or legacy JSON', async () => {
  await withApp({ server: { long_poll_timeout_ms: 150 } }, { step_delay_ms: 400 }, async (_t, base) => {
    const { run } = await newRun(base)
    const submitted = await postFwdBwd(base, ALICE, ceRequest(run, 1, [1, 2, 3, 4]))
    const started = Date.now()
    const pending = await call(base, 'POST', '/retrieve_future', {
      key: ALICE,
      json: { request_id: submitted.json.request_id },
    })
    assert.ok(Date.now() - started >= 140, 'the poll was held')
    assert.deepEqual(pending.json, {
      type: 'try_again',
      request_id: submitted.json.request_id,
      queue_state: 'active',
    })
    const proto = await result(base, ALICE, submitted.json.request_id, 'application/x-protobuf')
    assert.equal(proto.headers.get('content-type'), 'application/x-protobuf')
    const res = await fetch(`${base}/api/v1/retrieve_future`, {
      method: 'POST',
      headers: { 'x-api-key': ALICE, 'content-type': 'application/json', accept: 'application/x-protobuf' },
      body: JSON.stringify({ request_id: submitted.json.request_id }),
    })
    const decoded = decodeForwardBackwardOutput(new Uint8Array(await res.arrayBuffer()))
    assert.deepEqual(decoded.outputs[0]!.logprobs!.shape, [3])
    assert.ok(decoded.metrics['loss:sum']! > 0)
    // A finished result stays retrievable; without protobuf in Accept it is the legacy JSON shape.
    const json = await result(base, ALICE, submitted.json.request_id)
    assert.equal(json.json.loss_fn_outputs[0].logprobs.dtype, 'float32')
    assert.equal(json.json.metrics['loss:sum'], decoded.metrics['loss:sum'])
  })
})

test('a failed operation is 200 {"error","category"}', async () => {
  await withApp({}, {}, async (_t, base) => {
    const { run } = await newRun(base)
    const load = await call(base, 'POST', '/load_weights', {
      key: ALICE,
      json: { model_id: run, seq_id: 1, path: `tinker://${run}/weights/missing`, optimizer: true },
    })
    const failed = await result(base, ALICE, load.json.request_id)
    assert.equal(failed.status, 200)
    assert.deepEqual(Object.keys(failed.json).sort(), ['category', 'error'])
    assert.equal(failed.json.category, 'user')
  })
})

test('create_session is idempotent per X-Idempotency-Key and per user', async () => {
  await withApp({}, {}, async (_t, base) => {
    const make = (key: string, idem: string) =>
      call(base, 'POST', '/create_session', { key, json: {}, headers: { 'x-idempotency-key': idem } })
    const a = await make(ALICE, 'k1')
    assert.equal((await make(ALICE, 'k1')).json.session_id, a.json.session_id)
    assert.notEqual((await make(ALICE, 'k2')).json.session_id, a.json.session_id)
    assert.notEqual((await make(BOB, 'k1')).json.session_id, a.json.session_id)
    const untested = await call(base, 'POST', '/create_session', {
      key: ALICE,
      json: { sdk_version: '0.19.0' },
    })
    assert.match(untested.json.warning_message, /0\.25/)
  })
})

test('expired sessions refuse new work and drop their queued samples; live runs keep training', async () => {
  await withApp({}, { step_delay_ms: 200 }, async (t, base) => {
    const { session, run } = await newRun(base)
    const sampler = await call(base, 'POST', '/create_sampling_session', {
      key: ALICE,
      json: { session_id: session, sampling_session_seq_id: 0, base_model: MODEL },
    })
    const sample = await call(base, 'POST', '/asample', {
      key: ALICE,
      json: {
        sampling_session_id: sampler.json.sampling_session_id,
        seq_id: 0,
        num_samples: 1,
        prompt: { chunks: [{ tokens: [1] }] },
        sampling_params: { max_tokens: 2 },
      },
    })
    const expired = await t.app.tuft.sessions.reap(Date.now() + 3600_000)
    assert.deepEqual(expired, [session])
    const dropped = await result(base, ALICE, sample.json.request_id)
    assert.match(dropped.json.error, /client went away/)
    assert.equal(
      (await call(base, 'POST', '/session_heartbeat', { key: ALICE, json: { session_id: session } })).status,
      404,
    )
    const again = await call(base, 'POST', '/create_model', {
      key: ALICE,
      json: { session_id: session, model_seq_id: 1, base_model: MODEL, lora_config: { rank: 4 } },
    })
    assert.equal(again.status, 404)
    const fb = await postFwdBwd(base, ALICE, ceRequest(run, 1, [1, 2, 3]))
    assert.equal((await result(base, ALICE, fb.json.request_id, 'application/x-protobuf')).status, 200)
  })
})

test('a sample request nobody polls any more is dropped', async () => {
  await withApp({}, { step_delay_ms: 300 }, async (t, base) => {
    const { session } = await newRun(base)
    const sampler = await call(base, 'POST', '/create_sampling_session', {
      key: ALICE,
      json: { session_id: session, sampling_session_seq_id: 0, base_model: MODEL },
    })
    const sample = await call(base, 'POST', '/asample', {
      key: ALICE,
      json: {
        sampling_session_id: sampler.json.sampling_session_id,
        num_samples: 1,
        prompt: { chunks: [{ tokens: [1] }] },
        sampling_params: { max_tokens: 2 },
      },
    })
    assert.equal(t.app.tuft.sampling.dropAbandoned(Date.now()), 0, 'a fresh request is kept')
    assert.equal(t.app.tuft.sampling.dropAbandoned(Date.now() + 61_000), 1)
    assert.match((await result(base, ALICE, sample.json.request_id)).json.error, /client went away/)
  })
})

test('expired checkpoints are garbage-collected from disk and store', async () => {
  await withApp({}, {}, async (t, base) => {
    const { run } = await newRun(base)
    const save = await call(base, 'POST', '/save_weights', {
      key: ALICE,
      json: { model_id: run, path: 'short', seq_id: 1, ttl_seconds: 1 },
    })
    await result(base, ALICE, save.json.request_id)
    const record = await t.app.tuft.checkpoints.find(run, { kind: 'weights', name: 'short' })
    assert.ok(record)
    const dir = t.app.tuft.checkpoints.absDir(record)
    assert.ok(existsSync(join(dir, 'adapter_model.safetensors')))
    assert.equal(await t.app.tuft.checkpoints.gc(Date.now()), 0)
    assert.equal(await t.app.tuft.checkpoints.gc(Date.now() + 2000), 1)
    assert.ok(!existsSync(dir))
    assert.equal((await t.app.store.scan('ckpt/')).length, 0)
  })
})

test('services announce futures, usage, queue depth and resident adapters', async () => {
  await withApp({}, {}, async (t, base) => {
    const seen: string[] = []
    const usage: string[] = []
    t.app.events.on('future.done', (e) => seen.push(`${e.kind}:${e.ok}`))
    t.app.events.on('usage', (e) => usage.push(e.kind))
    let resident = -1
    t.app.events.on('adapters.resident', (e) => {
      resident = e.count
    })
    let depthEvents = 0
    t.app.events.on('queue.depth', () => {
      depthEvents++
    })
    const { run } = await newRun(base)
    assert.equal(resident, 1)
    const fb = await postFwdBwd(base, ALICE, ceRequest(run, 1, [1, 2, 3]))
    await result(base, ALICE, fb.json.request_id, 'application/x-protobuf')
    assert.deepEqual(seen, ['create_model:true', 'forward_backward:true'])
    assert.deepEqual(usage, ['training_tokens'])
    assert.ok(depthEvents >= 2)
    const unload = await call(base, 'POST', '/unload_model', { key: ALICE, json: { model_id: run } })
    assert.equal((await result(base, ALICE, unload.json.request_id)).json.type, 'unload_model')
    assert.equal(resident, 0)
    assert.equal((await postFwdBwd(base, ALICE, ceRequest(run, 2, [1, 2, 3]))).status, 400)
  })
})

test('forward_backward work of different users is fused into one engine call', async () => {
  await withApp({}, { step_delay_ms: 150 }, async (t, base) => {
    const a1 = await newRun(base, ALICE)
    const a2 = await newRun(base, ALICE)
    const b = await newRun(base, BOB)
    const blocker = await postFwdBwd(base, ALICE, ceRequest(a1.run, 1, [1, 2, 3]))
    await new Promise((r) => setTimeout(r, 30))
    const fa = await postFwdBwd(base, ALICE, ceRequest(a2.run, 1, [4, 5, 6]))
    const fb = await postFwdBwd(base, BOB, ceRequest(b.run, 1, [7, 8, 9]))
    for (const [key, f] of [
      [ALICE, blocker],
      [ALICE, fa],
      [BOB, fb],
    ] as const) {
      assert.equal((await result(base, key, f.json.request_id, 'application/x-protobuf')).status, 200)
    }
    // Both works queued while the engine was busy go into its next call, together.
    assert.deepEqual(
      t.calls.map((c) => c.adapters.length),
      [1, 2],
    )
    assert.deepEqual([...t.calls[1]!.adapters].sort(), [a2.run, b.run].sort())
  })
})

test('without authorized_users only the local dev key is accepted', async () => {
  await withApp({ authorized_users: {} }, {}, async (t, base) => {
    const dev = await call(base, 'POST', '/create_session', { key: 'tml-local-dev-key', json: {} })
    assert.equal(dev.status, 200)
    assert.equal((await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).status, 401)
    const owner = (await t.app.tuft.sessions.get(t.config.model_owner, dev.json.session_id)).owner
    assert.equal(owner, t.config.model_owner)
  })
})

test('each run keeps only its newest ephemeral snapshots; an evicted sampler answers 404', async () => {
  await withApp({}, {}, async (_t, base) => {
    const { run } = await newRun(base)
    const samplers: string[] = []
    for (let i = 0; i < SNAPSHOTS_KEPT_PER_RUN + 1; i++) {
      const f = await call(base, 'POST', '/save_weights_for_sampler', {
        key: ALICE,
        json: { model_id: run, seq_id: i + 1, sampling_session_seq_id: i },
      })
      samplers.push((await result(base, ALICE, f.json.request_id)).json.sampling_session_id)
    }
    const ask = (sampler: string) =>
      call(base, 'POST', '/asample', {
        key: ALICE,
        json: {
          sampling_session_id: sampler,
          num_samples: 1,
          prompt: { chunks: [{ tokens: [1] }] },
          sampling_params: { max_tokens: 2 },
        },
      })
    const evicted = await ask(samplers[0]!)
    assert.equal(evicted.status, 404)
    assert.match(evicted.json.detail, /no longer holds its in-memory snapshot/)
    const newest = await ask(samplers.at(-1)!)
    assert.equal((await result(base, ALICE, newest.json.request_id, 'application/x-protobuf')).status, 200)
  })
})

test('create_model and create_sampling_session are idempotent on their client-side sequence numbers', async () => {
  await withApp({}, {}, async (_t, base) => {
    const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
    const model = () =>
      call(base, 'POST', '/create_model', {
        key: ALICE,
        json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
      })
    const first = await model()
    const again = await model()
    assert.deepEqual(again.json, first.json)
    assert.equal(first.json.model_id, `${session}:train:0`)
    const sampler = () =>
      call(base, 'POST', '/create_sampling_session', {
        key: ALICE,
        json: { session_id: session, sampling_session_seq_id: 3, base_model: MODEL },
      })
    assert.equal((await sampler()).json.sampling_session_id, `${session}:sample:3`)
    assert.equal((await sampler()).json.sampling_session_id, `${session}:sample:3`)
    const info = await call(base, 'GET', `/samplers/${session}:sample:3`, { key: ALICE })
    assert.deepEqual(info.json, { sampler_id: `${session}:sample:3`, base_model: MODEL, model_path: null })
  })
})

test('work waiting for a model that is still loading is reported as paused for capacity', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-loading-'))
  const config = await testConfig(dir, { server: { long_poll_timeout_ms: 100 } }, { load_delay_ms: 600 })
  const registry = new EngineRegistry()
  registry.register(createEngineDouble('double'))
  const app = await buildApp(config, { registry, configDir: dir })
  try {
    await app.ready()
    const base = await listen(app)
    const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
    const created = await call(base, 'POST', '/create_model', {
      key: ALICE,
      json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
    })
    const poll = await call(base, 'POST', '/retrieve_future', {
      key: ALICE,
      json: { request_id: created.json.request_id },
    })
    assert.equal(poll.json.type, 'try_again')
    assert.equal(poll.json.queue_state, 'paused_capacity')
    assert.match(poll.json.queue_state_reason, /still loading/)
    assert.equal((await result(base, ALICE, created.json.request_id)).json.model_id, created.json.model_id)
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('closing the server answers held long-polls once queued work had its grace period', async () => {
  const t = await startTestApp(
    { server: { long_poll_timeout_ms: 20_000, shutdown_grace_ms: 200 } },
    { step_delay_ms: 3000 },
  )
  const base = await listen(t.app)
  const { run } = await newRun(base)
  const fb = await postFwdBwd(base, ALICE, ceRequest(run, 1, [1, 2, 3]))
  const started = Date.now()
  const poll = call(base, 'POST', '/retrieve_future', {
    key: ALICE,
    json: { request_id: fb.json.request_id },
  })
  await new Promise((r) => setTimeout(r, 100))
  const closed = t.close()
  assert.equal((await poll).json.type, 'try_again')
  assert.ok(Date.now() - started < 2000, 'the poll was held neither until its timeout nor the work')
  await closed
})

test('unloading a run fails the operations still held behind a seq_id gap', async () => {
  await withApp({ server: { seq_gap_timeout_ms: 60_000 } }, {}, async (t, base) => {
    const { run } = await newRun(base)
    // Hold a gap open as a concurrent submission of the same user would (seq_id 1 may still arrive).
    const inFlight = t.app.tuft.training.beginSubmission('alice')
    const held = await postFwdBwd(base, ALICE, ceRequest(run, 2, [1, 2, 3]))
    const unload = await call(base, 'POST', '/unload_model', { key: ALICE, json: { model_id: run } })
    assert.equal((await result(base, ALICE, unload.json.request_id)).json.type, 'unload_model')
    const failed = await result(base, ALICE, held.json.request_id)
    assert.match(failed.json.error, /unloaded before this operation ran/)
    inFlight.settle()
  })
})
