// Redis store against a real redis-server (started by test/helpers/redis.ts): the shared conformance
// suite, the key layout, script reloads, reconnects, a Redis that stops answering (503-class errors and
// health, naming no host), and boot failures that name the URL.

import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import pino from 'pino'
import { freePort, redisSkip, startRedis, type TestRedis } from '../test/helpers/redis.js'
import { newSpace, storeConformance } from './conformance.js'
import { openRedisStore, type RedisStore } from './redis.js'

const log = pino({ level: 'silent' })
let redis: TestRedis | undefined
let raw: Redis | undefined
before(async () => {
  if (redisSkip) return
  redis = await startRedis()
  raw = new Redis(redis.url)
})
after(async () => {
  raw?.disconnect()
  await redis?.stop()
})

function openStore(namespace: string, url = redis!.url, connectTimeoutMs = 2_000): Promise<RedisStore> {
  return openRedisStore(
    { redis_url: url, namespace, connect_timeout_ms: connectTimeoutMs, command_timeout_ms: 5_000 },
    log,
  )
}

describe('on redis-server', { skip: redisSkip }, () =>
  storeConformance('redis', { open: (space) => openStore(space), durable: true, shared: true }),
)

describe('redis store', { skip: redisSkip }, () => {
  it('keeps documents as version + JSON hashes under <namespace>:, with TTL in Redis', async () => {
    const ns = newSpace()
    const s = await openStore(ns)
    const v = await s.put('run/1', { a: [1] }, { ttlMs: 60_000 })
    assert.deepEqual(await raw!.hgetall(`${ns}:run/1`), { v: String(v), d: '{"a":[1]}' })
    const pttl = await raw!.pttl(`${ns}:run/1`)
    assert.ok(pttl > 50_000 && pttl <= 60_000)
    await s.put('run/1', 'no ttl')
    assert.equal(await raw!.pttl(`${ns}:run/1`), -1)
    assert.equal(await raw!.get(`${ns}:`), String(v! + 1), 'the version counter sits at the namespace root')
    await s.close()
  })

  it('reloads its scripts after Redis forgot them', async () => {
    const s = await openStore(newSpace())
    await s.put('k', 1)
    await raw!.script('FLUSH')
    const v = await s.put('k', 2, { ifVersion: (await s.get('k'))!.version })
    assert.ok(v !== null)
    assert.equal(await s.delete('k'), true)
    await s.close()
  })

  it('reconnects after its connection is killed', async () => {
    const s = await openStore(newSpace())
    await s.put('k', 1)
    await raw!.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
    assert.equal((await s.get('k'))?.value, 1)
    assert.ok((await s.put('k', 2)) !== null)
    await s.close()
  })

  it('while Redis does not answer: TUFT_UNAVAILABLE within command_timeout_ms, unhealthy, naming no host', async () => {
    const s = await openRedisStore(
      { redis_url: redis!.url, namespace: newSpace(), connect_timeout_ms: 2_000, command_timeout_ms: 200 },
      log,
    )
    await s.put('k', 1)
    assert.deepEqual(await s.health(), { ok: true })
    redis!.pause()
    try {
      for (const op of [() => s.get('k'), () => s.put('k', 2), () => s.scan('')]) {
        await assert.rejects(op(), (err: Error) => {
          assert.equal((err as { code?: string }).code, 'TUFT_UNAVAILABLE')
          assert.doesNotMatch(err.message, /redis:\/\/|127\.0\.0\.1/)
          return true
        })
      }
      const health = await s.health()
      assert.equal(health.ok, false)
      assert.doesNotMatch(health.message ?? '', /redis:\/\/|127\.0\.0\.1/)
    } finally {
      redis!.resume()
    }
    assert.deepEqual(await s.health(), { ok: true })
    await s.close()
  })

  it('an error Redis answers stays TUFT_PERSISTENCE, naming no host', async () => {
    const ns = newSpace()
    const s = await openStore(ns)
    await raw!.set(`${ns}:k`, 'not a hash')
    await assert.rejects(s.put('k', 1), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'TUFT_PERSISTENCE')
      assert.match(err.message, /WRONGTYPE/)
      assert.doesNotMatch(err.message, /redis:\/\/|127\.0\.0\.1/)
      return true
    })
    await s.close()
  })

  it('fails at boot with TUFT_PERSISTENCE naming the URL (password hidden) when nothing listens', async () => {
    const port = await freePort()
    const started = Date.now()
    // A short connect timeout: ioredis leaves its socket timer running until then, holding the test open.
    await assert.rejects(openStore('x', `redis://user:secret@127.0.0.1:${port}/0`, 300), (err: Error) => {
      assert.equal((err as { code?: string }).code, 'TUFT_PERSISTENCE')
      assert.match(
        err.message,
        new RegExp(`cannot reach Redis at redis://user:\\*\\*\\*@127\\.0\\.0\\.1:${port}/0`),
      )
      assert.match(err.message, /ECONNREFUSED/)
      assert.doesNotMatch(err.message, /secret/)
      return true
    })
    assert.ok(Date.now() - started < 2_000)
  })

  it('fails at boot within connect_timeout_ms when the server never answers', async () => {
    const sockets: Socket[] = []
    const silent = createServer((socket) => sockets.push(socket))
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    const { port } = silent.address() as { port: number }
    const started = Date.now()
    try {
      await assert.rejects(openStore('x', `redis://127.0.0.1:${port}`, 300), {
        code: 'TUFT_PERSISTENCE',
        message: new RegExp(`cannot reach Redis at redis://127\\.0\\.0\\.1:${port}.*300 ms`),
      })
      assert.ok(Date.now() - started < 1_500)
    } finally {
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  })
})
