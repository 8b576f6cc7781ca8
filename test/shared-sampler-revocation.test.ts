// A sampler another user created from a published checkpoint serves only while the owner keeps it
// published: after unpublish (or delete) its next sample and its lookup are 404 in the spec's error
// shape, while the owner's own sampler from the same checkpoint keeps sampling, also after the delete.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, BOB, startTestApp, type TestApp } from './helpers/app.js'
import { createRun, createSession, saveCheckpoint } from './helpers/conformance.js'
import { assertError, call, listen, result } from './helpers/http.js'

let t: TestApp
let base: string
before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
})
after(() => t.close())

async function samplerFrom(key: string, session: string, path: string): Promise<string> {
  const created = await call(base, 'POST', '/create_sampling_session', {
    key,
    json: { session_id: session, sampling_session_seq_id: 0, model_path: path },
  })
  assert.equal(created.status, 200, created.text)
  return created.json.sampling_session_id
}

function asample(key: string, sampler: string) {
  return call(base, 'POST', '/asample', {
    key,
    json: {
      sampling_session_id: sampler,
      num_samples: 1,
      prompt: { chunks: [{ tokens: [3] }] },
      sampling_params: { max_tokens: 4, temperature: 0 },
    },
  })
}

async function samples(key: string, sampler: string): Promise<void> {
  const submitted = await asample(key, sampler)
  assert.equal(submitted.status, 200, submitted.text)
  const r = await result(base, key, submitted.json.request_id)
  assert.equal(r.json.sequences.length, 1, r.text)
}

async function revoked(key: string, sampler: string): Promise<void> {
  assertError(await asample(key, sampler), 404, /no longer published/)
  assertError(await call(base, 'GET', `/samplers/${sampler}`, { key }), 404)
}

test("unpublishing or deleting a checkpoint revokes other users' samplers, not the owner's", async () => {
  const { sessionId: aliceSession, modelId: run } = await createRun(base, ALICE)
  const path = await saveCheckpoint(base, ALICE, run, 1, 'shared', 'sampler_weights')
  const tail = `/training_runs/${run}/checkpoints/sampler_weights/shared`
  const json = { headers: { 'content-type': 'application/json' } }
  assert.equal((await call(base, 'POST', `${tail}/publish`, { key: ALICE, ...json })).status, 204)
  const bobSession = await createSession(base, BOB)
  const bobs = await samplerFrom(BOB, bobSession, path)
  const alices = await samplerFrom(ALICE, aliceSession, path)
  await samples(BOB, bobs)

  assert.equal((await call(base, 'DELETE', `${tail}/publish`, { key: ALICE, ...json })).status, 204)
  await revoked(BOB, bobs)
  await samples(ALICE, alices)

  // Published again, it serves again; deleted, it is gone for bob for good.
  assert.equal((await call(base, 'POST', `${tail}/publish`, { key: ALICE, ...json })).status, 204)
  await samples(BOB, bobs)
  assert.equal((await call(base, 'DELETE', tail, { key: ALICE, ...json })).status, 204)
  await revoked(BOB, bobs)
  await samples(ALICE, alices)
})
