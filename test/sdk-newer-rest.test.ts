// REST additions of newer SDKs (README compatibility table): checkpoint listings carry `base_model`
// (SDK 0.39.0), validated against that release's Checkpoint model; the endpoints whose HTTP path no
// public source gives (search_checkpoints, copy weights, save_weights_external, external-weights upload)
// answer as any unknown route does: an immediate, non-retried 404 with a detail naming the route.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { createRun, saveCheckpoint } from './helpers/conformance.js'
import { assertError, call, listen } from './helpers/http.js'
import { assertModel } from './helpers/sdk-models.js'
import * as newer from './helpers/sdk-newer-models.js'

let t: TestApp
let base: string
let modelId: string

before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
  modelId = (await createRun(base, ALICE)).modelId
  await saveCheckpoint(base, ALICE, modelId, 1, 'a')
  await saveCheckpoint(base, ALICE, modelId, 2, 'b', 'sampler_weights')
})
after(() => t.close())

test('checkpoint listings carry base_model (SDK 0.39.0)', async () => {
  for (const url of ['/checkpoints', `/training_runs/${modelId}/checkpoints`]) {
    const a = await call(base, 'GET', url, { key: ALICE })
    assert.equal(a.status, 200, a.text)
    assert.equal(a.json.checkpoints.length, 2)
    for (const c of a.json.checkpoints) {
      assertModel(newer.Checkpoint039, c, 'Checkpoint (0.39.0)')
      assert.equal(c.base_model, MODEL)
    }
  }
  const run = await call(base, 'GET', `/training_runs/${modelId}`, { key: ALICE })
  assert.equal(run.json.last_checkpoint.base_model, MODEL)
})

test('a call to an endpoint this server lacks is an immediate 404 naming the route', async () => {
  const a = await call(base, 'POST', '/save_weights_external', {
    key: ALICE,
    json: { model_id: modelId, path: 'x', seq_id: 3, type: 'save_weights_external' },
  })
  assertError(a, 404, /No route for POST \/api\/v1\/save_weights_external/)
})
