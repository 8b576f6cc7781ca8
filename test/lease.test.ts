// Leases between two "processes" (two store handles on one data set): against one shared memory
// store, and against two Redis store instances on the same namespace of a real redis-server.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { acquireLease, leaseHolder } from '../core/lease.js'
import type { DeleteOptions, Json, PutOptions, Store } from '../core/persistence.js'
import { newSpace } from '../persistence/conformance.js'
import { MemoryStore } from '../persistence/memory.js'
import { openRedisStore } from '../persistence/redis.js'
import { redisSkip, startRedis, type TestRedis } from './helpers/redis.js'

const log = pino({ level: 'silent' })

/** A store handle that can be cut off, as a frozen or partitioned process would be. */
class Partitionable implements Store {
  cut = false
  constructor(private readonly inner: Store) {}
  get name() {
    return this.inner.name
  }
  get<T extends Json = Json>(key: string) {
    return this.reach().then(() => this.inner.get<T>(key))
  }
  put(key: string, value: Json, opts?: PutOptions) {
    return this.reach().then(() => this.inner.put(key, value, opts))
  }
  delete(key: string, opts?: DeleteOptions) {
    return this.reach().then(() => this.inner.delete(key, opts))
  }
  scan<T extends Json = Json>(prefix: string) {
    return this.reach().then(() => this.inner.scan<T>(prefix))
  }
  close() {
    return this.inner.close()
  }
  private async reach(): Promise<void> {
    if (this.cut) throw new Error('partitioned')
  }
}

interface Pair {
  a: Partitionable
  b: Store
  close(): Promise<void>
}

function leaseSuite(label: string, openPair: () => Promise<Pair>, skip: string | false = false): void {
  describe(`leases on ${label}`, { skip }, () => {
    const opts = (owner: string, extra = {}) => ({ owner, ttlMs: 300, renewEveryMs: 60, log, ...extra })

    it('has one holder at a time and hands over on release', async () => {
      const { a, b, close } = await openPair()
      const first = await acquireLease(a, 'run/1', opts('A'))
      assert.ok(first?.held)
      assert.equal(await acquireLease(b, 'run/1', opts('B')), null)
      assert.equal(await leaseHolder(b, 'run/1'), 'A')
      await first.release()
      assert.equal(first.held, false)
      const second = await acquireLease(b, 'run/1', opts('B'))
      assert.ok(second !== null && second.fence > first.fence)
      assert.equal(await leaseHolder(a, 'run/1'), 'B')
      await second.release()
      assert.equal(await leaseHolder(a, 'run/1'), null)
      await close()
    })

    it('lets exactly one of many concurrent contenders win', async () => {
      const { a, b, close } = await openPair()
      const leases = await Promise.all(
        Array.from({ length: 12 }, (_, i) => acquireLease(i % 2 ? a : b, 'run/2', opts(`P${i}`))),
      )
      const won = leases.filter((l) => l !== null)
      assert.equal(won.length, 1)
      await won[0]!.release()
      await close()
    })

    it('keeps the lease alive by renewing it on its own', async () => {
      const { a, b, close } = await openPair()
      const lease = await acquireLease(a, 'run/3', opts('A'))
      await sleep(700)
      assert.ok(lease?.held)
      assert.equal(await acquireLease(b, 'run/3', opts('B')), null)
      await lease.release()
      await close()
    })

    it('is taken over once a cut-off holder let it lapse, and the old holder learns it lost it', async () => {
      const { a, b, close } = await openPair()
      const lost: string[] = []
      const old = await acquireLease(a, 'run/4', opts('A', { onLost: (r: string) => lost.push(r) }))
      assert.ok(old !== null)
      a.cut = true
      assert.equal(await acquireLease(b, 'run/4', opts('B')), null)
      await sleep(450)
      assert.equal(old.held, false)
      const next = await acquireLease(b, 'run/4', opts('B'))
      assert.ok(next !== null && next.fence > old.fence)
      a.cut = false
      assert.equal(await old.renew(), false)
      assert.equal(lost.length, 1)
      assert.match(lost[0]!, /could not be renewed within 300 ms: partitioned/)
      await old.release()
      assert.equal(await leaseHolder(b, 'run/4'), 'B', "releasing a lost lease leaves the new holder's alone")
      await next.release()
      await close()
    })

    it('notices on renewal that someone else took it', async () => {
      const { a, b, close } = await openPair()
      const lost: string[] = []
      const lease = await acquireLease(
        a,
        'run/5',
        opts('A', { ttlMs: 60_000, onLost: (r: string) => lost.push(r) }),
      )
      await b.delete('run/5')
      const thief = await acquireLease(b, 'run/5', opts('B'))
      assert.ok(thief !== null)
      assert.equal(await lease?.renew(), false)
      assert.deepEqual(lost, ['it was taken over or removed'])
      assert.equal(lease?.held, false)
      await thief.release()
      await close()
    })

    it('rejects a renewal period that is not shorter than the TTL', async () => {
      const { a, close } = await openPair()
      await assert.rejects(acquireLease(a, 'run/6', opts('A', { renewEveryMs: 300 })), {
        code: 'TUFT_INTERNAL',
      })
      await close()
    })
  })
}

leaseSuite('one memory store', async () => {
  const shared = new MemoryStore()
  return { a: new Partitionable(shared), b: shared, close: () => shared.close() }
})

let redis: TestRedis | undefined
before(async () => {
  if (redisSkip) return
  redis = await startRedis()
})
after(async () => {
  await redis?.stop()
})

leaseSuite(
  'two Redis store instances on one namespace',
  async () => {
    const namespace = newSpace()
    const open = () =>
      openRedisStore(
        { redis_url: redis!.url, namespace, connect_timeout_ms: 2_000, command_timeout_ms: 5_000 },
        log,
      )
    const [a, b] = await Promise.all([open(), open()])
    return { a: new Partitionable(a), b, close: async () => void (await Promise.all([a.close(), b.close()])) }
  },
  redisSkip,
)
