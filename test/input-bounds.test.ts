// Input a hostile-tenant audit found mishandled (issue 17): each is a 4xx in the spec's error shape
// that names what was wrong, never a 500, and leaves the server serving.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, startTestApp, type TestApp } from './helpers/app.js'
import { assertError, call, listen } from './helpers/http.js'

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
