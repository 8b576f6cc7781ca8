// A Redis store that stops answering (the server paused with SIGSTOP: connections stay open, nothing
// comes back) makes requests fail within command_timeout_ms as 503 with Retry-After, in the spec's error
// shape and naming no host or URL; /healthz says "degraded" (still 200) and /readyz is 503. Once Redis
// answers again, so does the server.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, startTestApp, type TestApp } from './helpers/app.js'
import { type Answer, assertError, call, listen } from './helpers/http.js'
import { redisSkip, startRedis, type TestRedis } from './helpers/redis.js'

let redis: TestRedis
let t: TestApp
let base: string
before(async () => {
  if (redisSkip) return
  redis = await startRedis()
  t = await startTestApp({
    persistence: { mode: 'redis', redis_url: redis.url, namespace: 'unreachable', command_timeout_ms: 300 },
  })
  base = await listen(t.app)
})
after(async () => {
  if (redisSkip) return
  redis.resume()
  await t?.close()
  await redis?.stop()
})

function assertNamesNoHost(a: Answer): void {
  for (const secret of ['redis://', '127.0.0.1', String(redis.port)])
    assert.ok(!a.text.includes(secret), `the answer names ${secret}: ${a.text}`)
}

test('a paused Redis: 503 with Retry-After and no store address; healthz degraded; then recovery', {
  skip: redisSkip,
}, async () => {
  const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
  assert.deepEqual((await call(base, 'GET', '/healthz')).json, { status: 'ok' })

  redis.pause()
  const started = Date.now()
  for (const refused of [
    await call(base, 'POST', '/create_session', { key: ALICE, json: {} }),
    await call(base, 'GET', `/sessions/${session}`, { key: ALICE }),
  ]) {
    assertError(refused, 503, /does not answer; retry/)
    assert.equal(refused.headers.get('retry-after'), '1')
    assertNamesNoHost(refused)
  }
  assert.ok(Date.now() - started < 5_000, 'bounded by command_timeout_ms, not hanging')

  const health = await call(base, 'GET', '/healthz')
  assert.equal(health.status, 200)
  assert.equal(health.json.status, 'degraded')
  assert.equal(health.json.store.ok, false)
  assertNamesNoHost(health)
  const ready = await call(base, 'GET', '/readyz')
  assert.equal(ready.status, 503)
  assert.equal(ready.json.store.ok, false)

  redis.resume()
  const deadline = Date.now() + 10_000
  while ((await call(base, 'GET', '/healthz')).json.status !== 'ok') {
    assert.ok(Date.now() < deadline, 'healthz is ok again once Redis answers')
    await new Promise((r) => setTimeout(r, 50))
  }
  assert.equal((await call(base, 'GET', `/sessions/${session}`, { key: ALICE })).status, 200)
  assert.equal((await call(base, 'GET', '/readyz')).json.store.ok, true)
})
