// Conformance (spec §1.8, §1.9, §4.3, §4.5, §3.6): every user error is a 4xx the SDK surfaces at once
// (never 409 or 5xx, which it retries for minutes), every 400 has a non-empty body and an explicit
// Content-Length (a bare 400 is treated as a proxy glitch), failed operations are 200
// {"error","category"}, polls of pending futures are held and then answered try_again well within
// the SDK's 45 s timeout, and telemetry is always {"status":"accepted"}.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { loadConfig } from '../config/load.js'
import { ALICE, BOB, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import {
  assertFailedFuture,
  createModelBody,
  createRun,
  createSession,
  futureId,
  pollOnce,
  saveCheckpoint,
} from './helpers/conformance.js'
import { type Answer, assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'
import * as sdk from './helpers/sdk-models.js'

let t: TestApp
let base: string
let sessionId: string
let modelId: string

before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
  ;({ sessionId, modelId } = await createRun(base, ALICE))
})

after(() => t.close())

/** A user error as the SDK needs it: the status, never chunked, a JSON body saying why. */
function assertUserError(a: Answer, status: number, what: string): void {
  assert.equal(a.status, status, `${what}: expected ${status}, got ${a.status} ${a.text}`)
  assert.equal(a.headers.get('transfer-encoding'), null, `${what}: not chunked`)
  assertError(a, status)
  assert.ok(a.json.detail.trim().length > 0, `${what}: the detail says why`)
}

test('every rejected request is a 4xx with a JSON body and Content-Length, never 409 or 5xx', async () => {
  const json =
    (path: string, body: unknown, method = 'POST') =>
    () =>
      call(base, method, path, { key: ALICE, json: body })
  const lora = (over: Record<string, unknown>) => ({
    ...createModelBody(sessionId, 9),
    lora_config: { rank: 4, train_unembed: true, train_mlp: true, train_attn: true, ...over },
  })
  const optim = (over: Record<string, unknown>) => ({
    adam_params: {
      learning_rate: 1e-3,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weight_decay: 0,
      grad_clip_norm: 0,
    },
    model_id: modelId,
    seq_id: 100,
    type: 'optim_step',
    ...over,
  })
  const save = (over: Record<string, unknown>) => ({
    model_id: modelId,
    path: 'ok',
    seq_id: 100,
    overwrite: false,
    type: 'save_weights',
    ...over,
  })
  const noTargets = ceRequest(modelId, 100, [1, 2, 3])
  delete noTargets.data[0]!.lossFnInputs.target_tokens
  const outOfVocab = ceRequest(modelId, 100, [1, 2, 3])
  outOfVocab.data[0]!.lossFnInputs.target_tokens!.data = Int32Array.from([1, 9999])

  const cases: [string, number, () => Promise<Answer>][] = [
    [
      'malformed JSON',
      400,
      () =>
        call(base, 'POST', '/create_model', {
          key: ALICE,
          body: '{"session_id":',
          headers: { 'content-type': 'application/json' },
        }),
    ],
    ['LoRA rank 0', 400, json('/create_model', lora({ rank: 0 }))],
    ['LoRA rank above the maximum', 400, json('/create_model', lora({ rank: 65 }))],
    [
      'no LoRA target',
      400,
      json('/create_model', lora({ train_attn: false, train_mlp: false, train_unembed: false })),
    ],
    [
      'unknown base model',
      400,
      json('/create_model', { ...createModelBody(sessionId, 9), base_model: 'Qwen/Qwen9-1B' }),
    ],
    ['unknown session', 404, json('/create_model', createModelBody('s-nope'))],
    ['optim_step seq_id 0', 400, json('/optim_step', optim({ seq_id: 0 }))],
    ['negative learning rate', 400, json('/optim_step', optim({ adam_params: { learning_rate: -1 } }))],
    ['optim_step on an unknown run', 404, json('/optim_step', optim({ model_id: 's-nope:train:0' }))],
    ['checkpoint name with a slash', 400, json('/save_weights', save({ path: 'a/b' }))],
    ['ttl_seconds 0 at save', 400, json('/save_weights', save({ ttl_seconds: 0 }))],
    ['negative ttl_seconds at save', 400, json('/save_weights', save({ ttl_seconds: -5 }))],
    [
      'forward_backward as JSON',
      415,
      json('/forward_backward', { model_id: modelId, seq_id: 100, forward_backward_input: {} }),
    ],
    [
      'forward_backward with garbage bytes',
      400,
      () =>
        call(base, 'POST', '/forward_backward', {
          key: ALICE,
          body: Uint8Array.from([0xff, 0xff, 0xff, 0x07]),
          headers: { 'content-type': 'application/x-protobuf' },
        }),
    ],
    ['forward_backward without target_tokens', 400, () => postFwdBwd(base, ALICE, noTargets)],
    ['target token outside the vocabulary', 400, () => postFwdBwd(base, ALICE, outOfVocab)],
    [
      'load_weights in create-via-load addressing (flag is off)',
      400,
      json('/load_weights', {
        session_id: sessionId,
        model_seq_id: 5,
        path: `tinker://${modelId}/weights/x`,
      }),
    ],
    ['weights_info of a non-tinker path', 400, json('/weights_info', { tinker_path: '/etc/passwd' })],
    [
      'weights_info of an unknown checkpoint',
      404,
      json('/weights_info', { tinker_path: `tinker://${modelId}/weights/none` }),
    ],
    [
      'sampling session from a malformed path',
      400,
      json('/create_sampling_session', {
        session_id: sessionId,
        sampling_session_seq_id: 50,
        model_path: 'tinker://x',
      }),
    ],
    [
      'sampling session from an unknown checkpoint',
      404,
      json('/create_sampling_session', {
        session_id: sessionId,
        sampling_session_seq_id: 51,
        model_path: `tinker://${modelId}/sampler_weights/none`,
      }),
    ],
    [
      'sampling session with neither base_model nor model_path',
      400,
      json('/create_sampling_session', { session_id: sessionId, sampling_session_seq_id: 52 }),
    ],
    ['unknown request_id', 404, json('/retrieve_future', { request_id: 'no-such-future' })],
    ['unknown training run', 404, () => call(base, 'GET', '/training_runs/s-nope:train:0', { key: ALICE })],
    ['unknown sampler', 404, () => call(base, 'GET', '/samplers/s-nope:sample:0', { key: ALICE })],
    ['unknown session', 404, () => call(base, 'GET', '/sessions/s-nope', { key: ALICE })],
    ['paging limit 0', 400, () => call(base, 'GET', '/training_runs?limit=0&offset=0', { key: ALICE })],
    ['unknown route', 404, () => call(base, 'POST', '/no_such_endpoint', { key: ALICE, json: {} })],
    ['missing API key', 401, () => call(base, 'POST', '/client/config', { json: { sdk_version: '0.25.0' } })],
    ['API key without tml-', 401, () => call(base, 'POST', '/client/config', { key: 'sk-1', json: {} })],
    ['unknown tml- key', 401, () => call(base, 'POST', '/client/config', { key: 'tml-nobody', json: {} })],
  ]
  for (const [what, status, send] of cases) assertUserError(await send(), status, what)
})

test("another user's ids are 404, exactly like unknown ones", async () => {
  const sampler = await call(base, 'POST', '/create_sampling_session', {
    key: ALICE,
    json: { session_id: sessionId, sampling_session_seq_id: 60, base_model: MODEL },
  })
  const path = await saveCheckpoint(base, ALICE, modelId, 200, 'mine')
  const future = futureId(
    await call(base, 'POST', '/optim_step', {
      key: ALICE,
      json: {
        adam_params: {
          learning_rate: 1e-3,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-12,
          weight_decay: 0,
          grad_clip_norm: 0,
        },
        model_id: modelId,
        seq_id: 201,
      },
    }),
  )
  const bob = (method: string, p: string, json?: unknown) => call(base, method, p, { key: BOB, json })
  const cases: [string, Answer][] = [
    ['retrieve_future', await bob('POST', '/retrieve_future', { request_id: future })],
    ['get_info', await bob('POST', '/get_info', { model_id: modelId })],
    ['training run', await bob('GET', `/training_runs/${modelId}`)],
    ['checkpoint list', await bob('GET', `/training_runs/${modelId}/checkpoints`)],
    ['weights_info', await bob('POST', '/weights_info', { tinker_path: path })],
    ['sampler', await bob('GET', `/samplers/${sampler.json.sampling_session_id}`)],
    ['session', await bob('GET', `/sessions/${sessionId}`)],
    ['create_model in her session', await bob('POST', '/create_model', createModelBody(sessionId, 30))],
    ['publish', await bob('POST', `/training_runs/${modelId}/checkpoints/weights/mine/publish`)],
    ['delete', await bob('DELETE', `/training_runs/${modelId}/checkpoints/weights/mine`)],
  ]
  for (const [what, a] of cases) assertUserError(a, 404, `bob: ${what}`)
})

test('failed operations are 200 {"error","category"} on retrieve_future, never 4xx/5xx', async () => {
  const { modelId: run } = await createRun(base, ALICE)
  await saveCheckpoint(base, ALICE, run, 1, 'taken')
  // An existing name without overwrite: a user failure of the future (not a 409 the SDK would retry).
  const again = futureId(
    await call(base, 'POST', '/save_weights', {
      key: ALICE,
      json: { model_id: run, path: 'taken', seq_id: 2, overwrite: false, type: 'save_weights' },
    }),
  )
  assertFailedFuture(await result(base, ALICE, again), 'user', /taken/)
  const overwrite = futureId(
    await call(base, 'POST', '/save_weights', {
      key: ALICE,
      json: { model_id: run, path: 'taken', seq_id: 3, overwrite: true, type: 'save_weights' },
    }),
  )
  sdk.assertModel(sdk.SaveWeightsResult, (await result(base, ALICE, overwrite)).json, 'SaveWeightsResponse')

  // Loading a checkpoint that does not exist, and optimizer state from a sampler checkpoint.
  const missing = futureId(
    await call(base, 'POST', '/load_weights', {
      key: ALICE,
      json: { model_id: run, seq_id: 4, path: `tinker://${run}/weights/none`, optimizer: false },
    }),
  )
  assertFailedFuture(await result(base, ALICE, missing), 'user')
  const sampler = await saveCheckpoint(base, ALICE, run, 5, 'weights-only', 'sampler_weights')
  const withOptimizer = futureId(
    await call(base, 'POST', '/load_weights', {
      key: ALICE,
      json: { model_id: run, seq_id: 6, path: sampler, optimizer: true, type: 'load_weights' },
    }),
  )
  assertFailedFuture(await result(base, ALICE, withOptimizer), 'user', /optimizer/)
  // The failure is kept: a re-poll (after a dropped connection) sees the same answer.
  assertFailedFuture(await pollOnce(base, ALICE, withOptimizer), 'user', /optimizer/)
  // ... and the run goes on: the next seq_id runs normally.
  const next = futureId(await postFwdBwd(base, ALICE, ceRequest(run, 7, [1, 2, 3])))
  const out = await result(base, ALICE, next, 'application/x-protobuf')
  assert.match(out.headers.get('content-type') ?? '', /x-protobuf/, out.text)
})

test('optim_step accepts what torch AdamW accepts: learning_rate 0 ends many schedules', async () => {
  const { modelId: run } = await createRun(base, ALICE)
  await result(
    base,
    ALICE,
    futureId(await postFwdBwd(base, ALICE, ceRequest(run, 1, [1, 2, 3]))),
    'application/x-protobuf',
  )
  const zero = { learning_rate: 0, beta1: 0.9, beta2: 0.95, eps: 1e-12, weight_decay: 0, grad_clip_norm: 0 }
  const id = futureId(
    await call(base, 'POST', '/optim_step', {
      key: ALICE,
      json: { adam_params: zero, model_id: run, seq_id: 2, type: 'optim_step' },
    }),
  )
  const r = await result(base, ALICE, id)
  sdk.assertModel(sdk.OptimStepResult, r.json, 'OptimStepResponse')
})

test('user_metadata comes back as a string-only map (the SDK validates dict[str, str] strictly)', async () => {
  const s = await createSession(base, ALICE)
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { ...createModelBody(s), user_metadata: { renderer_name: 'qwen3', step: 5, flag: true } },
  })
  if (created.status === 400) return // refusing non-string values is as good as stringifying them
  const model = (await result(base, ALICE, futureId(created))).json.model_id
  const run = await call(base, 'GET', `/training_runs/${model}?access_scope=owned`, { key: ALICE })
  sdk.assertModel(sdk.TrainingRun, run.json, 'TrainingRun')
  assert.equal(run.json.user_metadata.renderer_name, 'qwen3')
  for (const v of Object.values(run.json.user_metadata)) assert.equal(typeof v, 'string')
})

test('publish/unpublish are idempotent 204s; deleting twice is a 404, never a 409', async () => {
  const { modelId: run } = await createRun(base, ALICE)
  await saveCheckpoint(base, ALICE, run, 1, 'p')
  const at = `/training_runs/${run}/checkpoints/weights/p`
  for (const [method, path] of [
    ['POST', `${at}/publish`],
    ['POST', `${at}/publish`],
    ['DELETE', `${at}/publish`],
    ['DELETE', `${at}/publish`],
    ['DELETE', at],
  ] as const) {
    const a = await call(base, method, path, { key: ALICE, headers: { 'content-type': 'application/json' } })
    assert.equal(a.status, 204, `${method} ${path}: ${a.text}`)
  }
  assertUserError(
    await call(base, 'DELETE', at, { key: ALICE, headers: { 'content-type': 'application/json' } }),
    404,
    'second delete',
  )
})

test('telemetry answers exactly {"status":"accepted"} whatever the events look like', async () => {
  for (const body of [
    { events: [], platform: 'Linux', sdk_version: '0.25.0', session_id: sessionId, process_uuid: 'p' },
    {
      events: [
        { event: 'UNHANDLED_EXCEPTION', error_type: 'ValueError', error_message: 'x', traceback: null },
        { event: 'GENERIC_EVENT', event_name: 'n', event_data: { nested: [1, { a: null }] } },
        { event: 'FUTURE_KIND', unknown_field: 1 },
      ],
      session_id: `sessionless-${crypto.randomUUID()}`,
    },
  ]) {
    const a = await call(base, 'POST', '/telemetry', { key: ALICE, json: body })
    assert.equal(a.status, 200, a.text)
    assert.match(a.headers.get('content-type') ?? '', /json/)
    assert.deepEqual(a.json, { status: 'accepted' })
  }
})

describe('long-poll', () => {
  let slow: TestApp
  let slowBase: string

  before(async () => {
    // Training calls take 2.5 s; polls are held for 1 s at most.
    slow = await startTestApp({ server: { long_poll_timeout_ms: 1000 } }, { step_delay_ms: 2500 })
    slowBase = await listen(slow.app)
  })

  after(() => slow.close())

  test('a pending future is held, then answered try_again with a queue_state, and then its result', async () => {
    const { modelId: run } = await createRun(slowBase, ALICE)
    const id = futureId(await postFwdBwd(slowBase, ALICE, ceRequest(run, 1, [1, 2, 3])))
    const started = Date.now()
    const pending = await pollOnce(slowBase, ALICE, id, 'application/x-protobuf')
    const held = Date.now() - started
    assert.equal(pending.status, 200)
    assert.match(
      pending.headers.get('content-type') ?? '',
      /json/,
      'try_again stays JSON even when protobuf is accepted',
    )
    sdk.assertModel(sdk.TryAgain, pending.json, 'TryAgainResponse')
    assert.equal(pending.json.request_id, id)
    assert.ok(held >= 800, `the poll was held (${held} ms), not answered in a tight loop`)
    const done = await result(slowBase, ALICE, id, 'application/x-protobuf')
    assert.match(done.headers.get('content-type') ?? '', /x-protobuf/)
    assert.ok(Date.now() - started < 10_000)
  })

  test('the configured long-poll period stays below the SDK 45 s poll timeout', async () => {
    const defaults = await loadConfig({ cwd: slow.dir, env: {}, overrides: {} })
    assert.ok(defaults.server.long_poll_timeout_ms > 0)
    assert.ok(defaults.server.long_poll_timeout_ms <= 30_000, 'default within the recommended 20-30 s')
    await assert.rejects(
      loadConfig({ cwd: slow.dir, env: {}, overrides: { server: { long_poll_timeout_ms: 45_000 } } }),
      'a long-poll period the SDK would time out on is refused at startup',
    )
  })
})

test('create_session without a project and heartbeats answer with SDK-valid shapes', async () => {
  const s = await createSession(base, ALICE)
  const hb = await call(base, 'POST', '/session_heartbeat', {
    key: ALICE,
    json: { session_id: s, type: 'session_heartbeat' },
  })
  assert.equal(hb.status, 200, hb.text)
  sdk.assertModel(sdk.SessionHeartbeatResponse, hb.json, 'SessionHeartbeatResponse')
})
