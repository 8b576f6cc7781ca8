// The client's HTTP layer against a loopback fake server: which answers are retried (spec §1.8
// Layer A), with what delays, and under one idempotency key.

import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { APIConnectionError, APIStatusError } from './errors.js'
import { FakeServer } from './fake-server.js'
import { HttpClient, isRetryableStatus, retryAfterMs } from './http.js'

const FAST = { baseDelayMs: 1, maxDelayMs: 2, maxRetries: 3 }
let server: FakeServer

async function client(handler: Parameters<FakeServer['on']>[1], path = '/prefix') {
  server = await new FakeServer().on('POST /prefix/api/v1/x', handler).start()
  return new HttpClient({ baseUrl: `${server.url}${path}`, apiKey: 'tml-k', retry: FAST })
}

afterEach(() => server?.stop())

describe('HttpClient retries', () => {
  it('retries 408/409/429/5xx under one idempotency key, keeping the base path prefix', async () => {
    const statuses = [503, 429, 409]
    const http = await client((_r, n) =>
      n < statuses.length ? { status: statuses[n]! } : { body: { ok: true } },
    )
    assert.deepEqual(await http.json('POST', '/api/v1/x', { json: {} }), { ok: true })
    const sent = server.sent('/prefix/api/v1/x')
    assert.equal(sent.length, 4)
    assert.equal(new Set(sent.map((r) => r.headers['x-idempotency-key'])).size, 1)
    assert.deepEqual(
      sent.map((r) => r.headers['x-stainless-retry-count']),
      ['0', '1', '2', '3'],
    )
    assert.equal(sent[0]!.headers['x-api-key'], 'tml-k')
    assert.equal(sent[0]!.headers['content-type'], 'application/json')
  })

  it('surfaces a 400 with a body at once, and gives up after maxRetries', async () => {
    let http = await client(() => ({ status: 400, body: { detail: 'bad' } }))
    await assert.rejects(
      http.json('POST', '/api/v1/x'),
      (e: unknown) => e instanceof APIStatusError && e.status === 400,
    )
    assert.equal(server.requests.length, 1)
    await server.stop()
    http = await client(() => ({ status: 500, body: { detail: 'down' } }))
    await assert.rejects(
      http.json('POST', '/api/v1/x'),
      (e: unknown) => e instanceof APIStatusError && e.status === 500,
    )
    assert.equal(server.requests.length, 4)
  })

  it('treats a 400 without a body as a connection failure', async () => {
    const http = await client((_r, n) => (n === 0 ? { status: 400 } : { body: { ok: 1 } }))
    assert.deepEqual(await http.json('POST', '/api/v1/x'), { ok: 1 })
    assert.equal(server.requests.length, 2)
  })

  it('honours x-should-retry in both directions', async () => {
    const http = await client((_r, n) =>
      n === 0
        ? { status: 400, body: { detail: 'again' }, headers: { 'x-should-retry': 'true' } }
        : { status: 503, headers: { 'x-should-retry': 'false' }, body: {} },
    )
    await assert.rejects(
      http.json('POST', '/api/v1/x'),
      (e: unknown) => e instanceof APIStatusError && e.status === 503,
    )
    assert.equal(server.requests.length, 2)
  })

  it('reports an unreachable server as APIConnectionError', async () => {
    const http = new HttpClient({
      baseUrl: 'http://127.0.0.1:1',
      apiKey: 'tml-k',
      retry: { ...FAST, maxRetries: 1 },
    })
    await assert.rejects(http.json('GET', '/api/v1/x'), APIConnectionError)
  })
})

describe('retry classification', () => {
  it('knows the retryable statuses', () => {
    assert.deepEqual(
      [400, 401, 404, 408, 409, 422, 429, 500, 503].filter(isRetryableStatus),
      [408, 409, 429, 500, 503],
    )
  })

  it('reads retry-after-ms, retry-after seconds and dates, within (0, 60] s', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '250' }), now), 250)
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '1.5' }), now), 1500)
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:02 GMT' }), now), 2000)
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '120' }), now), undefined)
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '0' }), now), undefined)
    assert.equal(retryAfterMs(new Headers(), now), undefined)
  })
})
