// Fair sharing between users over real HTTP with the engine double (issue 17): a user's large training
// backlog runs in slices and another user's small step finishes first; a user's sampling flood never
// turns another user's request into a 429, and the other user's request finishes before the flood;
// a user's configured weight (limits) gives them that share of training engine calls.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { ForwardBackwardRequest } from '../core/wire/proto.js'
import { ALICE, BOB, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

let t: TestApp
let base: string

before(async () => {
  // Every engine call takes 150 ms; 8 tokens per training call; one sample at a time on the engine;
  // four sample requests per model.
  t = await startTestApp(
    { server: { max_batch_tokens: 8, max_running_samples: 1, sample_queue_limit: 4 } },
    { step_delay_ms: 150 },
  )
  base = await listen(t.app)
})

after(async () => {
  await t.close()
})

async function newRun(key: string): Promise<string> {
  const session = (await call(base, 'POST', '/create_session', { key, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
  })
  assert.equal((await result(base, key, created.json.request_id)).status, 200)
  return created.json.model_id
}

/** `n` cross-entropy datums of 8 tokens each in one request. */
function bigRequest(modelId: string, seqId: number, n: number): ForwardBackwardRequest {
  const one = (i: number) => ceRequest(modelId, seqId, [1, 2, 3, 4, 5, 6, 7, 8, (i % 20) + 9]).data[0]!
  return { ...ceRequest(modelId, seqId, [1, 2]), data: Array.from({ length: n }, (_, i) => one(i)) }
}

test("a large training request runs in slices; another user's small step finishes first", async () => {
  const [aliceRun, bobRun] = await Promise.all([newRun(ALICE), newRun(BOB)])
  const finished: string[] = []
  const big = await postFwdBwd(base, ALICE, bigRequest(aliceRun, 1, 12))
  assert.equal(big.status, 200)
  const bigResult = result(base, ALICE, big.json.request_id).then((a) => {
    finished.push('alice forward_backward')
    return a
  })
  await new Promise((r) => setTimeout(r, 100))
  const fb = await postFwdBwd(base, BOB, ceRequest(bobRun, 1, [1, 2, 3]))
  const step = await call(base, 'POST', '/optim_step', {
    key: BOB,
    json: { model_id: bobRun, seq_id: 2, adam_params: { learning_rate: 0.01 } },
  })
  const stepResult = await result(base, BOB, step.json.request_id)
  assert.equal(stepResult.status, 200, stepResult.text)
  assert.equal((await result(base, BOB, fb.json.request_id)).status, 200)
  finished.push('bob optim_step')
  const alice = await bigResult
  assert.equal(alice.status, 200, alice.text)
  assert.deepEqual(finished, ['bob optim_step', 'alice forward_backward'])
  // Every datum's output came back, in order (the last target differs per datum).
  assert.equal(alice.json.loss_fn_outputs.length, 12)
  // 12 datums of 8 tokens with a budget of 8: 12 calls for alice, none larger than the budget.
  const aliceCalls = t.calls.filter((c) => c.adapters.includes(aliceRun))
  assert.equal(aliceCalls.length, 12)
  for (const c of aliceCalls) assert.equal(c.items, 1)
})

test("a sampling flood gets 429 beyond its share; another user's request is accepted and finishes first", async () => {
  const sampler = async (key: string) => {
    const session = (await call(base, 'POST', '/create_session', { key, json: {} })).json.session_id
    return (
      await call(base, 'POST', '/create_sampling_session', {
        key,
        json: { session_id: session, sampling_session_seq_id: 0, base_model: MODEL },
      })
    ).json.sampling_session_id as string
  }
  const [aliceSampler, bobSampler] = await Promise.all([sampler(ALICE), sampler(BOB)])
  const ask = (key: string, samplerId: string, seq: number) =>
    call(base, 'POST', '/asample', {
      key,
      json: {
        sampling_session_id: samplerId,
        seq_id: seq,
        num_samples: 1,
        prompt: { chunks: [{ tokens: [1, 2] }] },
        sampling_params: { max_tokens: 4 },
      },
    })
  const flood = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(ALICE, aliceSampler, i)))
  const statuses = flood.map((a) => a.status)
  // Four at once (more only if one finished while the others were still arriving).
  assert.ok(statuses.filter((s) => s === 200).length >= 4, statuses.join(','))
  assertError(flood.find((a) => a.status === 429)!, 429, /sample_queue_limit 4/)
  const finished: string[] = []
  const aliceDone = flood
    .filter((a) => a.status === 200)
    .map((a) => result(base, ALICE, a.json.request_id).then(() => finished.push('alice')))
  // Alice holds the whole bound, yet Bob's request is accepted and overtakes her queue.
  const bob = await ask(BOB, bobSampler, 0)
  assert.equal(bob.status, 200, bob.text)
  const bobResult = await result(base, BOB, bob.json.request_id)
  assert.equal(bobResult.json.type, 'sample', bobResult.text)
  finished.push('bob')
  await Promise.all(aliceDone)
  assert.ok(finished.indexOf('bob') < 3, `bob finished before alice's flood: ${finished.join(',')}`)
})

test('limits.users.<id>.weight shares training engine calls in proportion', async () => {
  const weighted = await startTestApp(
    { server: { max_batch_tokens: 32 }, limits: { users: { alice: { weight: 3 } } } },
    { step_delay_ms: 20 },
  )
  try {
    const url = await listen(weighted.app)
    const run = async (key: string) => {
      const session = (await call(url, 'POST', '/create_session', { key, json: {} })).json.session_id
      const created = await call(url, 'POST', '/create_model', {
        key,
        json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
      })
      assert.equal((await result(url, key, created.json.request_id)).status, 200)
      return created.json.model_id as string
    }
    const [aliceRun, bobRun] = await Promise.all([run(ALICE), run(BOB)])
    const posted = await Promise.all([
      postFwdBwd(url, ALICE, bigRequest(aliceRun, 1, 48)),
      postFwdBwd(url, BOB, bigRequest(bobRun, 1, 48)),
    ])
    await Promise.all([
      result(url, ALICE, posted[0].json.request_id),
      result(url, BOB, posted[1].json.request_id),
    ])
    // In the calls holding both users' work, alice got about three datums for each of bob's (about: the
    // first and last of them hold what the round-robin's carried-over credit allowed).
    const both = weighted.calls.filter((c) => c.adapters.includes(aliceRun) && c.adapters.includes(bobRun))
    assert.ok(both.length >= 4, `${both.length} calls held both users' work`)
    const count = (id: string) => both.reduce((n, c) => n + c.adapters.filter((a) => a === id).length, 0)
    const ratio = count(aliceRun) / count(bobRun)
    assert.ok(ratio > 2.5 && ratio < 3.5, `alice ${count(aliceRun)}, bob ${count(bobRun)}`)
  } finally {
    await weighted.close()
  }
})
