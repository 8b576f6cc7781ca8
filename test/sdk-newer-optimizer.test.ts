// Optimizer selection (README compatibility table, "optimizer"): bodies shaped as SDK 0.29.1 sends them
// (types/optimizer.py; service_client.py always sends `optimizer_config`, training_client.py sends the
// step parameters as `optim_params`). AdamW in either form trains exactly as SDK 0.25's `adam_params`
// does; Dimuon, wherever it appears, is refused with a 400 naming it, never run as AdamW.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, startTestApp, type TestApp } from './helpers/app.js'
import { createModelBody, createSession } from './helpers/conformance.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'
import { sdkDecodeForwardBackwardOutput } from './helpers/sdk-proto.js'

let t: TestApp
let base: string
let sessionId: string
let modelSeq = 0

before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
  sessionId = await createSession(base, ALICE)
})
after(() => t.close())

const SEQUENCE = [1, 2, 3, 4, 5]
const ADAM = {
  learning_rate: 0.05,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weight_decay: 0.01,
  grad_clip_norm: 0,
}

async function createModel(extra: Record<string, unknown>) {
  const body = { ...createModelBody(sessionId, modelSeq++), lora_config: { rank: 4, seed: 11 }, ...extra }
  return call(base, 'POST', '/create_model', { key: ALICE, json: body })
}

/** Trains one step with the given optim_step body fields; returns the next forward pass's logprobs. */
async function stepThenForward(create: Record<string, unknown>, step: Record<string, unknown>) {
  const created = await createModel(create)
  assert.equal(created.status, 200, created.text)
  const modelId = (await result(base, ALICE, created.json.request_id)).json.model_id as string
  await result(base, ALICE, (await postFwdBwd(base, ALICE, ceRequest(modelId, 1, SEQUENCE))).json.request_id)
  const optim = await call(base, 'POST', '/optim_step', {
    key: ALICE,
    json: { model_id: modelId, seq_id: 2, type: 'optim_step', ...step },
  })
  assert.equal(optim.status, 200, optim.text)
  assert.equal((await result(base, ALICE, optim.json.request_id)).status, 200)
  const fwd = await postFwdBwd(base, ALICE, ceRequest(modelId, 3, SEQUENCE, true))
  const res = await fetch(`${base}/api/v1/retrieve_future`, {
    method: 'POST',
    headers: { 'x-api-key': ALICE, 'content-type': 'application/json', accept: 'application/x-protobuf' },
    body: JSON.stringify({ request_id: fwd.json.request_id }),
  })
  return sdkDecodeForwardBackwardOutput(new Uint8Array(await res.arrayBuffer())).loss_fn_outputs
}

test("0.29.1's AdamW (optimizer_config adamw, optim_params) trains bit-identically to 0.25's adam_params", async () => {
  const legacy = await stepThenForward({}, { adam_params: ADAM })
  const newer = await stepThenForward({ optimizer_config: { type: 'adamw' } }, { optim_params: ADAM })
  const tagged = await stepThenForward(
    { optimizer_config: { type: 'adamw' } },
    { optim_params: { type: 'adamw', ...ADAM } },
  )
  assert.deepEqual(newer, legacy)
  assert.deepEqual(tagged, legacy)
  // And the step did something: the base model's logprobs differ.
  const untrained = await stepThenForward({}, { adam_params: { ...ADAM, learning_rate: 0 } })
  assert.notDeepEqual(untrained, legacy)
})

test('Dimuon is refused with a 400 naming it, at creation, at load and at every step', async () => {
  assertError(await createModel({ optimizer_config: { type: 'dimuon', version: 1 } }), 400, /'dimuon'.*AdamW/)
  const created = await createModel({ optimizer_config: { type: 'adamw' } })
  const modelId = (await result(base, ALICE, created.json.request_id)).json.model_id as string
  const dimuon = {
    type: 'dimuon',
    learning_rate: 0.01,
    grad_clip_norm: 0,
    beta1: 0.9,
    damping: 1e-4,
    rank_lr_correction_exponent: 0.175,
  }
  for (const step of [{ optim_params: dimuon }, { adam_params: dimuon }]) {
    const a = await call(base, 'POST', '/optim_step', {
      key: ALICE,
      json: { model_id: modelId, seq_id: 1, ...step },
    })
    assertError(a, 400, /'dimuon'/)
  }
  const load = await call(base, 'POST', '/load_weights', {
    key: ALICE,
    json: {
      session_id: sessionId,
      model_seq_id: 99,
      path: 'tinker://x/weights/y',
      optimizer: true,
      optimizer_config: { type: 'dimuon', version: 1 },
    },
  })
  assertError(load, 400, /'dimuon'/)
  const none = await call(base, 'POST', '/optim_step', { key: ALICE, json: { model_id: modelId, seq_id: 1 } })
  assertError(none, 400, /adam_params or optim_params/)
})
