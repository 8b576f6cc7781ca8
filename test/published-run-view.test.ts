// A training run that others may read because one of its checkpoints is published shows them only
// what the published checkpoint tells: not the owner's user_metadata nor project, and as its activity
// the time of its newest published checkpoint instead of the owner's last request. The owner sees all.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, BOB, startTestApp, type TestApp } from './helpers/app.js'
import { createModelBody, saveCheckpoint } from './helpers/conformance.js'
import { call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'
import * as sdk from './helpers/sdk-models.js'

let t: TestApp
let base: string
before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
})
after(() => t.close())

test('others see a published run without its user_metadata, project or last request time', async () => {
  const session = await call(base, 'POST', '/create_session', {
    key: ALICE,
    json: { tags: [], user_metadata: {}, project_id: 'secret-project', sdk_version: '0.25.0' },
  })
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { ...createModelBody(session.json.session_id), user_metadata: { plan: 'private notes' } },
  })
  const run: string = (await result(base, ALICE, created.json.request_id)).json.model_id
  await saveCheckpoint(base, ALICE, run, 1, 'shared')
  const tail = `/training_runs/${run}/checkpoints/weights/shared/publish`
  assert.equal((await call(base, 'POST', tail, { key: ALICE })).status, 204)
  // The owner keeps working after publishing: her activity is hers to see only.
  await new Promise((r) => setTimeout(r, 20))
  await result(base, ALICE, (await postFwdBwd(base, ALICE, ceRequest(run, 2, [1, 2, 3]))).json.request_id)

  const mine = (await call(base, 'GET', `/training_runs/${run}`, { key: ALICE })).json
  const published = mine.last_checkpoint.time as string
  assert.deepEqual(mine.user_metadata, { plan: 'private notes' })
  assert.ok(Date.parse(mine.last_request_time) > Date.parse(published), 'the owner sees her last request')

  const shared = await call(base, 'GET', `/training_runs/${run}?access_scope=accessible`, { key: BOB })
  assert.equal(shared.status, 200, shared.text)
  sdk.assertModel(sdk.TrainingRun, shared.json, 'TrainingRun')
  assert.equal(shared.json.user_metadata, null)
  assert.equal(shared.json.last_request_time, published)
  assert.equal(shared.json.last_checkpoint.checkpoint_id, 'weights/shared')

  const listed = await call(base, 'GET', '/training_runs?access_scope=accessible&limit=10&offset=0', {
    key: BOB,
  })
  const entry = listed.json.training_runs.find((r: { training_run_id: string }) => r.training_run_id === run)
  assert.deepEqual(entry, shared.json)
  const byProject = await call(
    base,
    'GET',
    '/training_runs?access_scope=accessible&limit=10&offset=0&project_id=secret-project',
    { key: BOB },
  )
  assert.deepEqual(byProject.json.training_runs, [], "another user's project never matches")
  const ownProject = await call(base, 'GET', '/training_runs?limit=10&offset=0&project_id=secret-project', {
    key: ALICE,
  })
  assert.deepEqual(
    ownProject.json.training_runs.map((r: { training_run_id: string }) => r.training_run_id),
    [run],
  )
})
