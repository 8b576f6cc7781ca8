// Conformance (spec §3.14, §3.23, §5.10, §7.3): checkpoint routes take a wildcard tail — the SDK's
// two-segment ids (`weights/<name>`), bare names, and names that collide with the actions themselves
// (a checkpoint literally called `publish`) — and TTLs follow the spec: positive integers only,
// null clears, expiry counted from now and reported as `expires_at`.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, startTestApp, type TestApp } from './helpers/app.js'
import { createRun, saveCheckpoint } from './helpers/conformance.js'
import { type Answer, assertError, call, listen } from './helpers/http.js'
import * as sdk from './helpers/sdk-models.js'

let t: TestApp
let base: string
let run: string
let seq = 0

before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
  run = (await createRun(base, ALICE)).modelId
})

after(() => t.close())

/** Body-less like the SDK (JSON Content-Type, no body) unless a JSON body is given. */
const send = (method: string, tail: string, json?: unknown) =>
  call(base, method, `/training_runs/${run}/checkpoints/${tail}`, {
    key: ALICE,
    ...(json === undefined ? { headers: { 'content-type': 'application/json' } } : { json }),
  })

async function listing(): Promise<
  Map<string, { public: boolean; expires_at: string | null; checkpoint_type: string }>
> {
  const a = await call(base, 'GET', `/training_runs/${run}/checkpoints`, { key: ALICE })
  sdk.assertModel(sdk.CheckpointsResponse, a.json, 'CheckpointsListResponse')
  return new Map(a.json.checkpoints.map((c: { checkpoint_id: string }) => [c.checkpoint_id, c]))
}

const ok = (a: Answer, what: string) => assert.equal(a.status, 204, `${what}: ${a.status} ${a.text}`)

test('a checkpoint literally named "publish" can be published, unpublished, given a TTL, archived and deleted', async () => {
  await saveCheckpoint(base, ALICE, run, ++seq, 'publish')
  await saveCheckpoint(base, ALICE, run, ++seq, 'publish', 'sampler_weights')
  ok(await send('POST', 'weights/publish/publish'), 'publish weights/publish')
  let list = await listing()
  assert.equal(list.get('weights/publish')?.public, true)
  assert.equal(list.get('sampler_weights/publish')?.public, false, 'only the addressed kind changed')
  ok(await send('DELETE', 'weights/publish/publish'), 'unpublish weights/publish')
  assert.equal((await listing()).get('weights/publish')?.public, false)
  ok(await send('PUT', 'weights/publish/ttl', { ttl_seconds: 600 }), 'ttl weights/publish')
  assert.ok((await listing()).get('weights/publish')?.expires_at)
  const archive = await send('GET', 'weights/publish/archive')
  assert.equal(archive.status, 302, archive.text)
  assert.match(archive.headers.get('location') ?? '', /^https?:\/\//)
  // DELETE of `<kind>/publish` is the checkpoint itself, not "unpublish the checkpoint named <kind>".
  ok(await send('DELETE', 'weights/publish'), 'delete weights/publish')
  list = await listing()
  assert.ok(!list.has('weights/publish'))
  assert.ok(list.has('sampler_weights/publish'))
  ok(await send('DELETE', 'sampler_weights/publish'), 'delete sampler_weights/publish')
})

test('bare checkpoint names work on every route (training checkpoints first)', async () => {
  await saveCheckpoint(base, ALICE, run, ++seq, 'plain')
  ok(await send('POST', 'plain/publish'), 'publish bare')
  assert.equal((await listing()).get('weights/plain')?.public, true)
  ok(await send('DELETE', 'plain/publish'), 'unpublish bare')
  assert.equal((await listing()).get('weights/plain')?.public, false)
  ok(await send('PUT', 'plain/ttl', { ttl_seconds: null }), 'ttl bare')
  assert.equal((await send('GET', 'plain/archive')).status, 302)
  // A bare name that only exists as a sampler checkpoint.
  await saveCheckpoint(base, ALICE, run, ++seq, 'only-sampler', 'sampler_weights')
  ok(await send('POST', 'only-sampler/publish'), 'publish bare sampler')
  assert.equal((await listing()).get('sampler_weights/only-sampler')?.public, true)
  ok(await send('DELETE', 'only-sampler'), 'delete bare sampler')
  // A bare checkpoint named "publish": DELETE <name> deletes it, <name>/publish publishes it.
  await saveCheckpoint(base, ALICE, run, ++seq, 'publish')
  ok(await send('POST', 'publish/publish'), 'publish bare "publish"')
  assert.equal((await listing()).get('weights/publish')?.public, true)
  ok(await send('DELETE', 'publish'), 'delete bare "publish"')
  ok(await send('DELETE', 'plain'), 'delete bare')
  const left = await listing()
  assert.ok(
    !left.has('weights/publish') && !left.has('weights/plain') && !left.has('sampler_weights/only-sampler'),
  )
})

test('unknown checkpoints, kinds and actions are 4xx with a body', async () => {
  assertError(await send('DELETE', 'weights/never-saved'), 404)
  assertError(await send('POST', 'weights/never-saved/publish'), 404)
  assertError(await send('GET', 'weights/never-saved/archive'), 404)
  assertError(await send('DELETE', 'gradients/x'), 400)
  assertError(await send('GET', 'weights/x'), 404, /No checkpoint route|Unknown checkpoint/)
  assertError(await send('PUT', 'weights/x', { ttl_seconds: 5 }), 404)
})

test('TTL: positive integers only, null clears, expiry counts from now and shows as expires_at', async () => {
  const before = Date.now()
  const path = await saveCheckpoint(base, ALICE, run, ++seq, 'ttl', 'weights', 120)
  const expires = (await listing()).get('weights/ttl')?.expires_at
  assert.ok(expires, 'ttl_seconds at save sets expires_at')
  const at = Date.parse(expires)
  assert.ok(at >= before + 119_000 && at <= Date.now() + 121_000, `expires_at ${expires} is ~120 s from now`)

  for (const bad of [0, -1, 1.5, '60']) {
    const a = await send('PUT', 'weights/ttl/ttl', { ttl_seconds: bad })
    if (bad === '60') {
      // pydantic would send an int; a numeric string is coerced or refused, never a 5xx.
      assert.ok(a.status === 204 || a.status === 400, `${a.status} ${a.text}`)
      continue
    }
    assertError(a, 400)
  }
  ok(await send('PUT', 'weights/ttl/ttl', { ttl_seconds: 3600 }), 'ttl 3600')
  const later = Date.parse((await listing()).get('weights/ttl')!.expires_at!)
  assert.ok(later >= Date.now() + 3_590_000, 'a new TTL counts from now')
  ok(await send('PUT', 'weights/ttl/ttl', { ttl_seconds: null }), 'ttl null')
  assert.equal((await listing()).get('weights/ttl')?.expires_at, null, 'null removes the expiry')

  // Expiry: gone from listings and from path lookups.
  ok(await send('PUT', 'weights/ttl/ttl', { ttl_seconds: 1 }), 'ttl 1')
  await new Promise((r) => setTimeout(r, 1100))
  assert.ok(!(await listing()).has('weights/ttl'))
  assertError(await call(base, 'POST', '/weights_info', { key: ALICE, json: { tinker_path: path } }), 404)
  // The name is free again (an expired checkpoint does not block a save without overwrite).
  await saveCheckpoint(base, ALICE, run, ++seq, 'ttl')
})

test('a TTL too large for a date is a 400, not a checkpoint that breaks every later listing', async () => {
  await saveCheckpoint(base, ALICE, run, ++seq, 'forever')
  const huge = 10 ** 13 // seconds: about 317,000 years, beyond what an ISO datetime can hold
  assertError(await send('PUT', 'weights/forever/ttl', { ttl_seconds: huge }), 400)
  const save = await call(base, 'POST', '/save_weights', {
    key: ALICE,
    json: { model_id: run, path: 'forever-2', seq_id: ++seq, ttl_seconds: huge, overwrite: false },
  })
  assertError(save, 400)
  // A century is fine.
  ok(await send('PUT', 'weights/forever/ttl', { ttl_seconds: 100 * 365 * 86_400 }), 'ttl 100 years')
  const list = await listing()
  assert.ok(Date.parse(list.get('weights/forever')!.expires_at!) > Date.now())
  const runs = await call(base, 'GET', '/training_runs?limit=20&offset=0', { key: ALICE })
  sdk.assertModel(sdk.TrainingRunsResponse, runs.json, 'TrainingRunsResponse')
})

test('checkpoint listings and run summaries use the two-segment checkpoint_id and the SDK types', async () => {
  await saveCheckpoint(base, ALICE, run, ++seq, 'summary')
  await saveCheckpoint(base, ALICE, run, ++seq, 'summary-s', 'sampler_weights')
  const r = await call(base, 'GET', `/training_runs/${run}?access_scope=owned`, { key: ALICE })
  sdk.assertModel(sdk.TrainingRun, r.json, 'TrainingRun')
  assert.equal(r.json.last_checkpoint.checkpoint_id, 'weights/summary')
  assert.equal(r.json.last_sampler_checkpoint.checkpoint_id, 'sampler_weights/summary-s')
  assert.equal(r.json.last_sampler_checkpoint.tinker_path, `tinker://${run}/sampler_weights/summary-s`)
  const all = await call(base, 'GET', '/checkpoints?limit=1&offset=0', { key: ALICE })
  sdk.assertModel(sdk.CheckpointsResponse, all.json, 'CheckpointsListResponse')
  sdk.assertModel(sdk.Cursor, all.json.cursor, 'Cursor')
  assert.equal(all.json.checkpoints.length, 1)
  assert.equal(all.json.checkpoints[0].checkpoint_id, 'sampler_weights/summary-s', 'newest first')
})
