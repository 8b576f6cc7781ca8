// Input a hostile-tenant audit found mishandled (issue 17): each is a 4xx in the spec's error shape
// that names what was wrong, never a 500, and leaves the server serving.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { encodeForwardBackwardRequest, type ForwardBackwardRequest } from '../core/wire/proto.js'
import { encodeMessage, pb } from '../core/wire/proto-root.js'
import { ALICE, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { createRun } from './helpers/conformance.js'
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

test('paging offset/limit that are infinite, negative or fractional are 400 on every listing', async () => {
  for (const path of ['/training_runs', '/checkpoints', '/sessions']) {
    for (const name of ['offset', 'limit']) {
      for (const value of ['Infinity', '-Infinity', '1e400', '-1', '1.5']) {
        const a = await call(base, 'GET', `${path}?${name}=${value}`, { key: ALICE })
        assertError(a, 400, new RegExp(`querystring/${name}`))
      }
    }
    assert.equal((await call(base, 'GET', `${path}?offset=0&limit=5`, { key: ALICE })).status, 200)
  }
})

test('a protobuf body is 415 on the JSON routes (only forward_backward takes protobuf) and creates nothing', async () => {
  const sessions = async () => (await call(base, 'GET', '/sessions?limit=1000', { key: ALICE })).json.sessions
  const before = await sessions()
  for (const type of ['application/x-protobuf', 'application/protobuf']) {
    const a = await call(base, 'POST', '/create_session', {
      key: ALICE,
      body: new Uint8Array([10, 2, 8, 1, 18, 3, 97, 98, 99]),
      headers: { 'content-type': type },
    })
    assertError(a, 415, /create_session takes a JSON body/)
  }
  assertError(
    await call(base, 'POST', '/optim_step', {
      key: ALICE,
      body: new Uint8Array([8, 1]),
      headers: { 'content-type': 'application/x-protobuf' },
    }),
    415,
  )
  assert.deepEqual(await sessions(), before)
})

test('loss_fn_inputs of another built-in loss are accepted and ignored; keys no loss knows are 400', async () => {
  const { modelId } = await createRun(base, ALICE)
  let seq = 1
  /** Runs a forward pass (weights unchanged) of [1..5] with extra inputs; answers its loss. */
  const lossWith = async (extra: Record<string, Float32Array>, lossFn = 'cross_entropy') => {
    const req: ForwardBackwardRequest = { ...ceRequest(modelId, seq++, [1, 2, 3, 4, 5], true), lossFn }
    const inputs = req.data[0]!.lossFnInputs
    for (const [name, data] of Object.entries(extra))
      inputs[name] = { dtype: 'float32', shape: [data.length], data }
    const submitted = await postFwdBwd(base, ALICE, req)
    if (submitted.status !== 200) return submitted
    const done = await result(base, ALICE, submitted.json.request_id)
    assert.equal(done.status, 200, done.text)
    return done.json.metrics['loss:sum'] as number
  }
  const zeros = new Float32Array(4)
  const plain = await lossWith({})
  assert.equal(typeof plain, 'number')
  // What a public black-box suite sends with every cross_entropy datum, and PPO's per-token clips.
  const extras = {
    logprobs: zeros,
    advantages: zeros,
    clip_low_threshold: Float32Array.from([0.8, 0.8, 0.8, 0.8]),
    clip_high_threshold: Float32Array.from([1.2, 1.2, 1.2, 1.2]),
  }
  assert.equal(await lossWith(extras), plain)
  // importance_sampling reads logprobs and advantages but not the clips (nor weights).
  assert.equal(typeof (await lossWith(extras, 'importance_sampling')), 'number')
  const unknown = await lossWith({ mask: zeros })
  assert.ok(typeof unknown === 'object')
  assertError(unknown, 400, /unknown key 'mask' \(the built-in losses know: target_tokens, weights, logprobs/)
})

test('session tags, project_id and user_metadata are bounded: 400 naming the bound beyond it', async () => {
  const create = (json: object) => call(base, 'POST', '/create_session', { key: ALICE, json })
  const most = { tags: Array(64).fill('t'.repeat(128)), project_id: 'p'.repeat(256) }
  const ok = await create({ ...most, user_metadata: { note: 'x'.repeat(16 * 1024 - 20) } })
  assert.equal(ok.status, 200, ok.text)
  assertError(await create({ tags: Array(65).fill('t') }), 400, /body\/tags must NOT have more than 64 items/)
  assertError(await create({ tags: ['t'.repeat(129)] }), 400, /body\/tags\/0 must NOT have more than 128/)
  assertError(
    await create({ project_id: 'p'.repeat(257) }),
    400,
    /body\/project_id must NOT have more than 256/,
  )
  assertError(
    await create({ user_metadata: { note: 'x'.repeat(16 * 1024) } }),
    400,
    /user_metadata is \d+ bytes as JSON; at most 16384/,
  )
  assertError(
    await call(base, 'PUT', `/sessions/${ok.json.session_id}/project`, {
      key: ALICE,
      json: { project_id: 'p'.repeat(257) },
    }),
    400,
    /project_id/,
  )
  // create_model's user_metadata too, refused before anything is created: the same model_seq_id works after.
  const model = (user_metadata: object) =>
    call(base, 'POST', '/create_model', {
      key: ALICE,
      json: {
        session_id: ok.json.session_id,
        model_seq_id: 0,
        base_model: MODEL,
        lora_config: { rank: 4 },
        user_metadata,
      },
    })
  assertError(await model({ big: 'x'.repeat(20_000) }), 400, /user_metadata is \d+ bytes/)
  const created = await model({ small: 'x' })
  assert.equal(created.status, 200, created.text)
  assert.equal((await result(base, ALICE, created.json.request_id)).status, 200)
})

test('empty protobuf chunks and tensors: an empty chunk adds no tokens, errors name the datum and the key', async () => {
  const { modelId } = await createRun(base, ALICE)
  let seq = 1
  const tokens = [1, 2, 3, 4, 5]
  const plain = await postFwdBwd(base, ALICE, ceRequest(modelId, seq++, tokens, true))
  const plainLoss = (await result(base, ALICE, plain.json.request_id)).json.metrics['loss:sum']
  // An empty encoded_text chunk next to real ones: the same input, the same loss.
  const padded = ceRequest(modelId, seq++, tokens, true)
  padded.data[0]!.chunks.unshift({ type: 'encoded_text', tokens: new Int32Array(0) })
  const a = await postFwdBwd(base, ALICE, padded)
  assert.equal(a.status, 200, a.text)
  assert.equal((await result(base, ALICE, a.json.request_id)).json.metrics['loss:sum'], plainLoss)
  // Only empty chunks: no input at all.
  const none = ceRequest(modelId, seq++, tokens, true)
  none.data[0]!.chunks = [{ type: 'encoded_text', tokens: new Int32Array(0) }]
  assertError(await postFwdBwd(base, ALICE, none), 400, /^data\[0\]\.model_input is empty$/)
  // A tensor whose data bytes are empty (unset in protobuf) while its shape says 4 elements.
  const message = pb.ForwardBackwardRequest.decode(
    encodeForwardBackwardRequest(ceRequest(modelId, seq++, tokens, true)),
  ) as unknown as { data: { loss_fn_inputs: Record<string, { dense: Uint8Array }> }[] }
  message.data[0]!.loss_fn_inputs.weights!.dense = new Uint8Array(0)
  const emptyWeights = await call(base, 'POST', '/forward_backward', {
    key: ALICE,
    body: encodeMessage(pb.ForwardBackwardRequest, message),
    headers: { 'content-type': 'application/x-protobuf' },
  })
  assertError(
    emptyWeights,
    400,
    /^data\[0\]\.loss_fn_inputs\['weights'\]: shape \[4\] needs 4 elements but 0 were sent$/,
  )
})
