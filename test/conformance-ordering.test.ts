// Conformance (spec §3.9, §3.18, §4.5-4.7): seq_id gaps never stall a run (the SDK moves on after a
// rejected submission), duplicates return the existing future and run once, late seq_ids are a 400
// (never 409), and create_model / create_sampling_session / asample are idempotent on their keys.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { isTuftError } from '../core/errors.js'
import { Sequencer } from '../core/services/sequencer.js'
import { ALICE, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { createModelBody, createRun, createSession, futureId, pollOnce } from './helpers/conformance.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'
import * as sdk from './helpers/sdk-models.js'

const ADAM = { learning_rate: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-12, weight_decay: 0, grad_clip_norm: 0 }
const optim = (modelId: string, seqId: number) => ({
  adam_params: ADAM,
  model_id: modelId,
  seq_id: seqId,
  type: 'optim_step',
})

let t: TestApp
let base: string

before(async () => {
  // A gap wait far beyond the long-poll period: a result on the first poll proves nothing waited for it.
  t = await startTestApp({ server: { seq_gap_timeout_ms: 60_000, long_poll_timeout_ms: 2000 } })
  base = await listen(t.app)
})

after(() => t.close())

test('a seq_id gap left by a rejected submission does not hold later operations', async () => {
  const { modelId } = await createRun(base, ALICE)
  const first = futureId(await postFwdBwd(base, ALICE, ceRequest(modelId, 1, [1, 2, 3, 4])))
  const firstAnswer = await result(base, ALICE, first, 'application/x-protobuf')
  assert.match(firstAnswer.headers.get('content-type') ?? '', /x-protobuf/, firstAnswer.text)

  // seq 2 is rejected at submission (unknown loss function): the SDK carries on with seq 3.
  const rejected = { ...ceRequest(modelId, 2, [1, 2, 3]), lossFn: 'not_a_loss' }
  assertError(await postFwdBwd(base, ALICE, rejected), 400, /not_a_loss/)
  const third = futureId(await call(base, 'POST', '/optim_step', { key: ALICE, json: optim(modelId, 3) }))
  const answer = await pollOnce(base, ALICE, third)
  assert.notEqual(answer.json.type, 'try_again', 'seq 3 ran without waiting for the rejected seq 2')
  sdk.assertModel(sdk.OptimStepResult, answer.json, 'OptimStepResponse')

  // A seq_id that never arrives at all (5 skipped by the client) does not hold seq 6 either.
  const sixth = futureId(await postFwdBwd(base, ALICE, ceRequest(modelId, 6, [2, 3, 4]), {}))
  const sixthAnswer = await pollOnce(base, ALICE, sixth, 'application/x-protobuf')
  assert.match(sixthAnswer.headers.get('content-type') ?? '', /x-protobuf/, sixthAnswer.text)
})

test("a seq_id whose submission failed may be re-sent (the SDK's retry) while nothing after it was accepted", async () => {
  const order: number[] = []
  const op = (n: number) => async () => {
    order.push(n)
  }
  const seq = new Sequencer({ gapWaitMs: 60_000, mayStillArrive: () => false })
  seq.submit(1, 'f1', op(1))
  seq.skip(2) // e.g. answered 503: the SDK's Layer B re-sends the same body, seq_id 2 included
  seq.submit(2, 'f2', op(2))
  seq.submit(3, 'f3', op(3))
  await seq.idle()
  assert.deepEqual(order, [1, 2, 3])
  // Once a later seq_id was accepted, the skipped one can no longer run in order.
  seq.skip(4)
  seq.submit(5, 'f5', op(5))
  await seq.idle()
  assert.throws(
    () => seq.check(4),
    (e) => isTuftError(e) && e.statusCode === 400,
  )
  assert.deepEqual(order, [1, 2, 3, 5])
  // A run recovered after a restart: every seq_id up to the recovered point is spent.
  const resumed = new Sequencer({
    gapWaitMs: 0,
    mayStillArrive: () => false,
    resume: { released: 10, seen: [] },
  })
  assert.throws(
    () => resumed.check(10),
    (e) => isTuftError(e) && e.statusCode === 400,
  )
  resumed.check(11)
  seq.close()
  resumed.close()
})

test('a duplicate (model_id, seq_id) returns the existing future and runs once; a late seq_id is a 400', async () => {
  const { modelId } = await createRun(base, ALICE)
  const callsBefore = t.calls.length
  const one = futureId(await postFwdBwd(base, ALICE, ceRequest(modelId, 1, [1, 2, 3])))
  // The same seq_id re-sent (e.g. after a lost answer), even with a different body: same future.
  const again = futureId(await postFwdBwd(base, ALICE, ceRequest(modelId, 1, [5, 6, 7, 8])))
  assert.equal(again, one)
  await result(base, ALICE, one, 'application/x-protobuf')
  const two = futureId(await call(base, 'POST', '/optim_step', { key: ALICE, json: optim(modelId, 2) }))
  await result(base, ALICE, two)
  assert.equal(
    futureId(await call(base, 'POST', '/optim_step', { key: ALICE, json: optim(modelId, 2) })),
    two,
    'a duplicate of an executed operation still answers with its future',
  )
  assert.equal(t.calls.length - callsBefore, 1, 'the duplicate forward_backward never reached the engine')

  // seq_ids start at 1 (a missing protobuf seq_id decodes as 0), and operations must be submitted in
  // order: a new seq_id below the executed ones is a user error, never a 409 the SDK would retry.
  assertError(await postFwdBwd(base, ALICE, ceRequest(modelId, 0, [1, 2])), 400)
  await result(
    base,
    ALICE,
    futureId(await postFwdBwd(base, ALICE, ceRequest(modelId, 5, [1, 2]))),
    'application/x-protobuf',
  )
  assertError(
    await call(base, 'POST', '/optim_step', { key: ALICE, json: optim(modelId, 4) }),
    400,
    /seq_id 4/,
  )
})

test('create_model is idempotent on (session_id, model_seq_id)', async () => {
  const sessionId = await createSession(base, ALICE)
  const body = createModelBody(sessionId, 3)
  const a = await call(base, 'POST', '/create_model', { key: ALICE, json: body })
  const b = await call(base, 'POST', '/create_model', { key: ALICE, json: body })
  assert.equal(futureId(b), futureId(a))
  assert.equal(b.json.model_id, a.json.model_id)
  const r = await result(base, ALICE, a.json.request_id)
  sdk.assertModel(sdk.CreateModelResult, r.json, 'CreateModelResponse')
  // Repeats after completion too (the SDK's Layer A retry may arrive late).
  assert.equal(
    futureId(await call(base, 'POST', '/create_model', { key: ALICE, json: body })),
    a.json.request_id,
  )
  const session = await call(base, 'GET', `/sessions/${sessionId}`, { key: ALICE })
  assert.deepEqual(session.json.training_run_ids, [r.json.model_id], 'one run, not two')
})

test('create_sampling_session and asample are idempotent on their client-minted sequence numbers', async () => {
  const sessionId = await createSession(base, ALICE)
  const body = {
    session_id: sessionId,
    sampling_session_seq_id: 7,
    base_model: MODEL,
    type: 'create_sampling_session',
  }
  const a = await call(base, 'POST', '/create_sampling_session', { key: ALICE, json: body })
  const b = await call(base, 'POST', '/create_sampling_session', { key: ALICE, json: body })
  sdk.assertModel(sdk.CreateSamplingSessionResponse, a.json, 'CreateSamplingSessionResponse')
  assert.equal(b.json.sampling_session_id, a.json.sampling_session_id)

  const sample = {
    num_samples: 1,
    prompt: { chunks: [{ tokens: [1, 2], type: 'encoded_text' }] },
    sampling_params: { max_tokens: 2, temperature: 1, top_k: -1, top_p: 1 },
    sampling_session_id: a.json.sampling_session_id,
    seq_id: 1_000_000_000, // pickled SamplingClients start near multiples of 10^9 (spec §2.3)
    prompt_logprobs: false,
    topk_prompt_logprobs: 0,
    type: 'sample',
  }
  const s1 = futureId(await call(base, 'POST', '/asample', { key: ALICE, json: sample }))
  const s2 = futureId(await call(base, 'POST', '/asample', { key: ALICE, json: sample }))
  assert.equal(s2, s1, 'a re-sent (sampler, seq_id) maps to the same request')
  const s3 = futureId(await call(base, 'POST', '/asample', { key: ALICE, json: { ...sample, seq_id: 5 } }))
  assert.notEqual(s3, s1, 'sampling seq_ids need not be dense or increasing')
  for (const id of [s1, s3]) {
    const r = await result(base, ALICE, id, 'application/x-protobuf')
    assert.match(r.headers.get('content-type') ?? '', /x-protobuf/, r.text)
  }
})
