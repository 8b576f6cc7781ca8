// Per-user limits and memory admission over real HTTP (config `limits:`, server.memory_budget_bytes):
// each limit refuses with its name and value in the spec's error shape, leaves the other user alone,
// and gives its capacity back once the user unloads, deletes or finishes; usage shows every standing.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ALICE, BOB, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { type Answer, assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

/** The engine double's own estimate (its V×V tables, V = 32): 16 KiB per adapter, 4 KiB shared. */
const ADAPTER_BYTES = 16 * 32 * 32
const SHARED_BYTES = 4 * 32 * 32

async function session(base: string, key: string): Promise<string> {
  const a = await call(base, 'POST', '/create_session', { key, json: { tags: [], user_metadata: {} } })
  assert.equal(a.status, 200, a.text)
  return a.json.session_id as string
}

function createModel(base: string, key: string, sessionId: string, seq: number, rank = 4) {
  return call(base, 'POST', '/create_model', {
    key,
    json: { session_id: sessionId, model_seq_id: seq, base_model: MODEL, lora_config: { rank } },
  })
}

/** A ready training run. */
async function run(base: string, key: string, sessionId: string, seq: number): Promise<string> {
  const created = await createModel(base, key, sessionId, seq)
  assert.equal(created.status, 200, created.text)
  const done = await result(base, key, created.json.request_id)
  assert.equal(done.json.model_id, created.json.model_id, done.text)
  return created.json.model_id as string
}

async function unload(base: string, key: string, modelId: string): Promise<void> {
  const a = await call(base, 'POST', '/unload_model', { key, json: { model_id: modelId } })
  assert.equal(a.status, 200, a.text)
  assert.equal((await result(base, key, a.json.request_id)).json.type, 'unload_model')
}

async function sampler(base: string, key: string, sessionId: string): Promise<string> {
  const a = await call(base, 'POST', '/create_sampling_session', {
    key,
    json: { session_id: sessionId, sampling_session_seq_id: 0, base_model: MODEL },
  })
  assert.equal(a.status, 200, a.text)
  return a.json.sampling_session_id as string
}

function asample(base: string, key: string, samplerId: string, maxTokens = 2, numSamples = 1) {
  return call(base, 'POST', '/asample', {
    key,
    json: {
      sampling_session_id: samplerId,
      num_samples: numSamples,
      prompt: { chunks: [{ tokens: [3, 4, 5, 6], type: 'encoded_text' }] },
      sampling_params: { max_tokens: maxTokens, temperature: 0, top_k: -1, top_p: 1 },
    },
  })
}

const usage = (base: string, key: string) => call(base, 'GET', '/usage', { key })

const CAROL = 'tml-carol-key'

describe('limits held by a user (runs, sessions, checkpoint bytes) and per request', () => {
  let t: TestApp
  let base: string
  before(async () => {
    t = await startTestApp({
      authorized_users: { [ALICE]: 'alice', [BOB]: 'bob', [CAROL]: 'carol' },
      operators: ['alice'],
      limits: {
        users: {
          bob: { max_training_runs: 2, max_sessions: 3 },
          carol: { max_lora_rank: 8, max_tokens_per_request: 16, max_checkpoint_bytes: 6000 },
        },
      },
    })
    base = await listen(t.app)
  })
  after(() => t.close())

  test('max_training_runs: the third run is refused; unload_model frees its place', async () => {
    const s = await session(base, BOB)
    const first = await run(base, BOB, s, 0)
    await run(base, BOB, s, 1)
    assertError(await createModel(base, BOB, s, 2), 403, /^limit max_training_runs \(2\) reached: 2 training/)
    // Alice's default limit is her own.
    const a = await session(base, ALICE)
    for (const seq of [0, 1, 2]) await run(base, ALICE, a, seq)
    await unload(base, BOB, first)
    await run(base, BOB, s, 3)
    const quota = (await usage(base, BOB)).json.quota
    assert.deepEqual(quota.max_training_runs, { limit: 2, used: 2 })
  })

  test('max_lora_rank: a larger rank is a 400 naming the limit; the limit itself is fine', async () => {
    const s = await session(base, CAROL)
    assertError(
      await createModel(base, CAROL, s, 0, 16),
      400,
      /^limit max_lora_rank \(8\) reached: LoRA rank 16/,
    )
    assert.equal((await createModel(base, CAROL, s, 1, 8)).status, 200)
    const a = await session(base, ALICE)
    const created = await createModel(base, ALICE, a, 0, 16)
    assert.equal(created.status, 200, created.text)
    await result(base, ALICE, created.json.request_id)
  })

  test('max_tokens_per_request: a larger forward_backward or sample is a 400; Alice is not limited', async () => {
    const s = await session(base, CAROL)
    const carolRun = await run(base, CAROL, s, 10)
    const long = Array.from({ length: 20 }, (_, i) => i % 30)
    assertError(
      await postFwdBwd(base, CAROL, ceRequest(carolRun, 1, long)),
      400,
      /^limit max_tokens_per_request \(16\)/,
    )
    // The refused seq_id is consumed (a user error); the next one runs.
    const ok = await postFwdBwd(base, CAROL, ceRequest(carolRun, 2, long.slice(0, 10)))
    assert.equal(ok.status, 200, ok.text)
    assert.ok((await result(base, CAROL, ok.json.request_id)).json.loss_fn_outputs)
    const samplerId = await sampler(base, CAROL, s)
    // 4 prompt tokens + 2 samples × 8 tokens = 20.
    assertError(await asample(base, CAROL, samplerId, 8, 2), 400, /^limit max_tokens_per_request \(16\)/)
    assert.equal((await asample(base, CAROL, samplerId, 6, 2)).status, 200)

    const a = await session(base, ALICE)
    const aliceRun = await run(base, ALICE, a, 10)
    const fb = await postFwdBwd(base, ALICE, ceRequest(aliceRun, 1, long))
    assert.equal(fb.status, 200, fb.text)
    await result(base, ALICE, fb.json.request_id)
  })

  test('max_checkpoint_bytes: a save that would pass it fails, leaves no files, and deleting makes room', async () => {
    const s = await session(base, CAROL)
    const id = await run(base, CAROL, s, 20)
    const save = async (seq: number, path: string): Promise<Answer> => {
      const a = await call(base, 'POST', '/save_weights_for_sampler', {
        key: CAROL,
        json: { model_id: id, seq_id: seq, path },
      })
      assert.equal(a.status, 200, a.text)
      return result(base, CAROL, a.json.request_id)
    }
    const first = await save(1, 'a')
    assert.match(first.json.path, /sampler_weights\/a$/, first.text)
    const used = (await usage(base, CAROL)).json.quota.max_checkpoint_bytes
    assert.ok(used.used > 3000 && used.used <= 6000, `one checkpoint takes ${used.used} bytes`)

    const second = await save(2, 'b')
    assert.match(
      second.json.error,
      /^limit max_checkpoint_bytes \(6000\) reached: checkpoints take \d+ bytes, \d+ with this one/,
    )
    assert.equal(second.json.category, 'user')
    assert.ok(!existsSync(join(t.config.checkpoint_dir, 'carol', id, 'sampler_weights', 'b')))
    // Alice's checkpoints are hers to count.
    const aliceRun = await run(base, ALICE, await session(base, ALICE), 20)
    const aliceSave = await call(base, 'POST', '/save_weights_for_sampler', {
      key: ALICE,
      json: { model_id: aliceRun, seq_id: 1, path: 'b' },
    })
    assert.match((await result(base, ALICE, aliceSave.json.request_id)).json.path, /sampler_weights\/b$/)
    // Replacing a checkpoint counts its new size only.
    assert.match((await save(3, 'a')).json.path, /sampler_weights\/a$/)

    const del = await call(base, 'DELETE', `/training_runs/${id}/checkpoints/sampler_weights/a`, {
      key: CAROL,
    })
    assert.equal(del.status, 204, del.text)
    assert.match((await save(4, 'b')).json.path, /sampler_weights\/b$/)
  })

  test('max_sessions: live sessions are bounded; an expired one frees its place', async () => {
    let live = (await usage(base, BOB)).json.quota.max_sessions.used as number
    while (live < 3) {
      await session(base, BOB)
      live++
    }
    const refused = await call(base, 'POST', '/create_session', { key: BOB, json: {} })
    assertError(refused, 403, /^limit max_sessions \(3\) reached: 3 sessions are live/)
    // A retry of an admitted creation is not a new session.
    const retried = await call(base, 'POST', '/create_session', {
      key: ALICE,
      json: {},
      headers: { 'x-idempotency-key': 'k1' },
    })
    assert.equal(retried.status, 200)
    await session(base, ALICE)
    // Sessions that stop heart-beating expire (the reaper runs on a timer; here it is told the time).
    await t.app.tuft.sessions.reap(Date.now() + 3600_000)
    assert.equal((await usage(base, BOB)).json.quota.max_sessions.used, 0)
    await session(base, BOB)
  })

  test('usage: each user reads their own quota; operators read everyone and the memory budget', async () => {
    const bob = await usage(base, BOB)
    assert.equal(bob.status, 200)
    assert.equal(bob.json.user_id, 'bob')
    const q = bob.json.quota
    assert.equal(q.weight, 1)
    assert.deepEqual(q.max_training_runs, { limit: 2, used: 2 })
    assert.deepEqual(q.max_lora_rank, { limit: null })
    assert.deepEqual(q.max_pending_requests, { limit: 4096, used: 0 })
    assert.deepEqual(q.max_sampling_requests_queued, { limit: 512, used: 0 })
    const carol = (await usage(base, CAROL)).json.quota
    assert.deepEqual(carol.max_lora_rank, { limit: 8 })
    assert.deepEqual(carol.max_tokens_per_request, { limit: 16 })
    assert.equal(carol.max_checkpoint_bytes.limit, 6000)
    assert.ok(carol.max_checkpoint_bytes.used > 0)

    assertError(await call(base, 'GET', '/admin/usage', { key: BOB }), 403)
    const admin = await call(base, 'GET', '/admin/usage', { key: ALICE })
    assert.equal(admin.status, 200, admin.text)
    const users = admin.json.users as { user_id: string; quota: { max_training_runs: { limit: number } } }[]
    assert.deepEqual(
      users.map((u) => [u.user_id, u.quota.max_training_runs.limit]),
      [
        ['alice', 32],
        ['bob', 2],
        ['carol', 32],
      ],
    )
    assert.ok(admin.json.memory.budget_bytes > 0)
    assert.ok(admin.json.memory.booked_bytes >= SHARED_BYTES + ADAPTER_BYTES)
  })
})

describe('limits on what a user has in flight', () => {
  let t: TestApp
  let base: string
  before(async () => {
    // Each engine call takes long enough for the next submissions to find the first ones unfinished.
    t = await startTestApp(
      { limits: { users: { bob: { max_pending_requests: 2, max_sampling_requests_queued: 2 } } } },
      { step_delay_ms: 1500 },
    )
    base = await listen(t.app)
  })
  after(() => t.close())

  test('max_pending_requests: a third unfinished request is a 429; the same seq_id passes later', async () => {
    const s = await session(base, BOB)
    const id = await run(base, BOB, s, 0)
    const a = await session(base, ALICE)
    const aliceRun = await run(base, ALICE, a, 0)
    const first = await postFwdBwd(base, BOB, ceRequest(id, 1, [1, 2, 3]))
    const second = await postFwdBwd(base, BOB, ceRequest(id, 2, [1, 2, 3]))
    assert.equal(first.status, 200, first.text)
    assert.equal(second.status, 200, second.text)
    const third = await postFwdBwd(base, BOB, ceRequest(id, 3, [1, 2, 3]))
    assertError(third, 429, /^limit max_pending_requests \(2\) reached: 2 requests are pending/)
    assert.ok(third.headers.get('retry-after'))
    assert.equal((await usage(base, BOB)).json.quota.max_pending_requests.used, 2)
    // Alice is not held back by Bob's backlog.
    const alice = await postFwdBwd(base, ALICE, ceRequest(aliceRun, 1, [1, 2, 3]))
    assert.equal(alice.status, 200, alice.text)
    await result(base, BOB, first.json.request_id)
    await result(base, BOB, second.json.request_id)
    const again = await postFwdBwd(base, BOB, ceRequest(id, 3, [1, 2, 3]))
    assert.equal(again.status, 200, again.text)
    assert.ok((await result(base, BOB, again.json.request_id)).json.loss_fn_outputs)
    await result(base, ALICE, alice.json.request_id)
  })

  test("max_sampling_requests_queued: Bob's third sample is a 429, Alice's is accepted", async () => {
    const s = await session(base, BOB)
    const samplerId = await sampler(base, BOB, s)
    const queued = [await asample(base, BOB, samplerId), await asample(base, BOB, samplerId)]
    for (const q of queued) assert.equal(q.status, 200, q.text)
    assertError(
      await asample(base, BOB, samplerId),
      429,
      /^limit max_sampling_requests_queued \(2\) reached: 2 sample requests are queued/,
    )
    const a = await session(base, ALICE)
    const alice = await asample(base, ALICE, await sampler(base, ALICE, a))
    assert.equal(alice.status, 200, alice.text)
    for (const q of queued) await result(base, BOB, q.json.request_id)
    const later = await asample(base, BOB, samplerId)
    assert.equal(later.status, 200, later.text)
    await result(base, BOB, later.json.request_id)
    await result(base, ALICE, alice.json.request_id)
  })
})

describe('memory admission', () => {
  let t: TestApp
  let base: string
  before(async () => {
    // Room for the model's shared memory and three adapters.
    t = await startTestApp({ server: { memory_budget_bytes: SHARED_BYTES + 3 * ADAPTER_BYTES } })
    base = await listen(t.app)
  })
  after(() => t.close())

  test('a run past the budget is a 429 naming it, whoever asks; an unloaded run frees its memory', async () => {
    const a = await session(base, ALICE)
    const b = await session(base, BOB)
    await run(base, ALICE, a, 0)
    await run(base, ALICE, a, 1)
    const bobs = await run(base, BOB, b, 0)
    const refused = await createModel(base, ALICE, a, 2)
    assertError(refused, 429, /^server\.memory_budget_bytes \(\d+\) reached: this training run needs about/)
    assertError(await createModel(base, BOB, b, 1), 429, /memory_budget_bytes/)
    await unload(base, BOB, bobs)
    await run(base, ALICE, a, 2)
  })
})
