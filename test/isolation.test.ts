// Tenant isolation over real HTTP: every endpoint that takes an id, called with another user's key,
// answers 404 (no existence leak) and changes nothing; published checkpoints become readable by all.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, BOB, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

let t: TestApp
let base: string

before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
})

after(async () => {
  await t.close()
})

async function aliceWorld() {
  const session = (
    await call(base, 'POST', '/create_session', { key: ALICE, json: { tags: [], user_metadata: {} } })
  ).json.session_id as string
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
  })
  const runId = created.json.model_id as string
  assert.equal((await result(base, ALICE, created.json.request_id)).json.model_id, runId)
  const fb = await postFwdBwd(base, ALICE, ceRequest(runId, 1, [1, 2, 3, 4]))
  const save = await call(base, 'POST', '/save_weights', {
    key: ALICE,
    json: { model_id: runId, path: 'ck', seq_id: 2 },
  })
  const ckpt = (await result(base, ALICE, save.json.request_id)).json.path as string
  const snap = await call(base, 'POST', '/save_weights_for_sampler', {
    key: ALICE,
    json: { model_id: runId, seq_id: 3, sampling_session_seq_id: 0 },
  })
  const sampler = (await result(base, ALICE, snap.json.request_id)).json.sampling_session_id as string
  return { session, runId, ckpt, sampler, fbFuture: fb.json.request_id as string }
}

test("another user's ids are 404 everywhere, and nothing changes", async () => {
  const a = await aliceWorld()
  const bobSession = (await call(base, 'POST', '/create_session', { key: BOB, json: {} })).json
    .session_id as string
  const bobModel = await call(base, 'POST', '/create_model', {
    key: BOB,
    json: { session_id: bobSession, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
  })
  const bobRun = bobModel.json.model_id as string
  await result(base, BOB, bobModel.json.request_id)
  const ckptTail = `/training_runs/${a.runId}/checkpoints/weights/ck`

  const probes: [string, Promise<Awaited<ReturnType<typeof call>>>][] = [
    ['heartbeat', call(base, 'POST', '/session_heartbeat', { key: BOB, json: { session_id: a.session } })],
    [
      'create_model',
      call(base, 'POST', '/create_model', {
        key: BOB,
        json: { session_id: a.session, model_seq_id: 5, base_model: MODEL, lora_config: { rank: 4 } },
      }),
    ],
    ['get_info', call(base, 'POST', '/get_info', { key: BOB, json: { model_id: a.runId } })],
    ['unload_model', call(base, 'POST', '/unload_model', { key: BOB, json: { model_id: a.runId } })],
    ['forward_backward', postFwdBwd(base, BOB, ceRequest(a.runId, 4, [1, 2, 3]))],
    [
      'optim_step',
      call(base, 'POST', '/optim_step', {
        key: BOB,
        json: { model_id: a.runId, seq_id: 4, adam_params: {} },
      }),
    ],
    [
      'save_weights',
      call(base, 'POST', '/save_weights', { key: BOB, json: { model_id: a.runId, seq_id: 4, path: 'x' } }),
    ],
    [
      'load_weights',
      call(base, 'POST', '/load_weights', { key: BOB, json: { model_id: a.runId, seq_id: 4, path: a.ckpt } }),
    ],
    [
      'save_weights_for_sampler',
      call(base, 'POST', '/save_weights_for_sampler', {
        key: BOB,
        json: { model_id: a.runId, seq_id: 4, path: 'y' },
      }),
    ],
    ['weights_info', call(base, 'POST', '/weights_info', { key: BOB, json: { tinker_path: a.ckpt } })],
    [
      'sampling session (alice session)',
      call(base, 'POST', '/create_sampling_session', {
        key: BOB,
        json: { session_id: a.session, sampling_session_seq_id: 9, base_model: MODEL },
      }),
    ],
    [
      'sampling session (alice path)',
      call(base, 'POST', '/create_sampling_session', {
        key: BOB,
        json: { session_id: bobSession, sampling_session_seq_id: 0, model_path: a.ckpt },
      }),
    ],
    [
      'asample',
      call(base, 'POST', '/asample', {
        key: BOB,
        json: {
          sampling_session_id: a.sampler,
          seq_id: 0,
          num_samples: 1,
          prompt: { chunks: [{ tokens: [1] }] },
          sampling_params: { max_tokens: 2 },
        },
      }),
    ],
    ['get sampler', call(base, 'GET', `/samplers/${a.sampler}`, { key: BOB })],
    [
      'retrieve_futures',
      call(base, 'POST', '/retrieve_futures', {
        key: BOB,
        json: { target: { type: 'sampling_session', sampling_session_id: a.sampler }, prev_cursor: 0 },
      }),
    ],
    [
      'retrieve_future',
      call(base, 'POST', '/retrieve_future', { key: BOB, json: { request_id: a.fbFuture } }),
    ],
    ['get training run', call(base, 'GET', `/training_runs/${a.runId}`, { key: BOB })],
    ['list run checkpoints', call(base, 'GET', `/training_runs/${a.runId}/checkpoints`, { key: BOB })],
    ['run metrics', call(base, 'GET', `/training_runs/${a.runId}/metrics`, { key: BOB })],
    [
      'delete checkpoint',
      call(base, 'DELETE', ckptTail, { key: BOB, headers: { 'content-type': 'application/json' } }),
    ],
    [
      'publish',
      call(base, 'POST', `${ckptTail}/publish`, {
        key: BOB,
        headers: { 'content-type': 'application/json' },
      }),
    ],
    [
      'unpublish',
      call(base, 'DELETE', `${ckptTail}/publish`, {
        key: BOB,
        headers: { 'content-type': 'application/json' },
      }),
    ],
    ['ttl', call(base, 'PUT', `${ckptTail}/ttl`, { key: BOB, json: { ttl_seconds: 1 } })],
    ['archive', call(base, 'GET', `${ckptTail}/archive`, { key: BOB })],
    ['get session', call(base, 'GET', `/sessions/${a.session}`, { key: BOB })],
    [
      'session project',
      call(base, 'PUT', `/sessions/${a.session}/project`, { key: BOB, json: { project_id: 'p' } }),
    ],
  ]
  for (const [name, probe] of probes) {
    const answer = await probe
    assert.equal(answer.status, 404, `${name}: expected 404, got ${answer.status} ${answer.text}`)
    assertError(answer, 404)
    assert.ok(!answer.text.includes('alice'), `${name} does not name the owner`)
  }

  // Loading alice's unpublished checkpoint into bob's own run fails that future as a user error.
  const load = await call(base, 'POST', '/load_weights', {
    key: BOB,
    json: { model_id: bobRun, seq_id: 1, path: a.ckpt },
  })
  const failed = await result(base, BOB, load.json.request_id)
  assert.equal(failed.json.category, 'user')
  assert.match(failed.json.error, /not found/)

  // Listings show bob nothing of alice's.
  assert.deepEqual(
    (await call(base, 'GET', '/training_runs', { key: BOB })).json.training_runs.map(
      (r: { training_run_id: string }) => r.training_run_id,
    ),
    [bobRun],
  )
  assert.equal((await call(base, 'GET', '/checkpoints', { key: BOB })).json.checkpoints.length, 0)
  assert.deepEqual((await call(base, 'GET', '/sessions', { key: BOB })).json.sessions, [bobSession])

  // Nothing changed for alice: her checkpoint is private, unexpired, and her run keeps training.
  const listed = await call(base, 'GET', `/training_runs/${a.runId}/checkpoints`, { key: ALICE })
  const ck = listed.json.checkpoints.find((c: { checkpoint_id: string }) => c.checkpoint_id === 'weights/ck')
  assert.equal(ck.public, false)
  assert.equal(ck.expires_at, null)
  const next = await postFwdBwd(base, ALICE, ceRequest(a.runId, 4, [1, 2, 3, 4]))
  assert.equal(next.status, 200)
  assert.equal((await result(base, ALICE, next.json.request_id, 'application/x-protobuf')).status, 200)
  assert.equal((await call(base, 'GET', `/samplers/${a.sampler}`, { key: ALICE })).json.base_model, MODEL)
  assert.equal(
    (await call(base, 'POST', '/session_heartbeat', { key: ALICE, json: { session_id: a.session } })).status,
    200,
  )

  // Published: bob may read it (weights_info, sampling, archive), but still not change it.
  await call(base, 'POST', `${ckptTail}/publish`, {
    key: ALICE,
    headers: { 'content-type': 'application/json' },
  })
  assert.equal(
    (await call(base, 'POST', '/weights_info', { key: BOB, json: { tinker_path: a.ckpt } })).json.lora_rank,
    4,
  )
  const shared = await call(base, 'POST', '/create_sampling_session', {
    key: BOB,
    json: { session_id: bobSession, sampling_session_seq_id: 1, model_path: a.ckpt },
  })
  assert.equal(shared.status, 200)
  assert.equal((await call(base, 'GET', `${ckptTail}/archive`, { key: BOB })).status, 302)
  assert.equal(
    (await call(base, 'DELETE', ckptTail, { key: BOB, headers: { 'content-type': 'application/json' } }))
      .status,
    404,
  )
  assert.equal(
    (await call(base, 'GET', `/training_runs/${a.runId}?access_scope=accessible`, { key: BOB })).status,
    200,
  )
})
