// The sampler adapter cache: loads once, keeps at most `limit` adapters resident (least recently used
// go first, never one a request is using), and frees retired adapters once their last request ends.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import type { AdapterRef, SamplingEngine } from '../core/engine.js'
import { AdapterCache } from '../core/services/adapter-cache.js'

function fakeEngine() {
  const log: string[] = []
  const engine = {
    async loadAdapter(ref: AdapterRef) {
      log.push(`load ${ref.id}`)
      if (ref.id === 'broken') throw new Error('cannot load')
    },
    async unloadAdapter(ref: AdapterRef) {
      log.push(`unload ${ref.id}`)
    },
  } as unknown as SamplingEngine
  return { log, engine }
}

const ref = (id: string): AdapterRef => ({ kind: 'peft', id, dir: `/ckpt/${id}` })
const tick = () => new Promise((r) => setTimeout(r, 1))

test('loads once, evicts least recently used beyond the limit, never an adapter in use', async () => {
  const { log, engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 2, pino({ level: 'silent' }))
  const releaseA = await cache.acquire(ref('a'))
  ;(await cache.acquire(ref('b')))()
  ;(await cache.acquire(ref('a')))()
  assert.deepEqual(log, ['load a', 'load b'])
  ;(await cache.acquire(ref('c')))()
  await tick()
  // b is the least recently used idle adapter; a is pinned by a running request.
  assert.deepEqual(log, ['load a', 'load b', 'load c', 'unload b'])
  assert.equal(cache.size(), 2)
  releaseA()
  releaseA()
  ;(await cache.acquire(ref('d')))()
  await tick()
  assert.deepEqual(log.slice(4), ['load d', 'unload a'])
})

test('in-memory snapshots are never evicted (they cannot be reloaded); only retire frees them', async () => {
  const { log, engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 1, pino({ level: 'silent' }))
  const snapshot: AdapterRef = { kind: 'snapshot', id: 'snap' }
  ;(await cache.acquire(snapshot))()
  ;(await cache.acquire(ref('a')))()
  ;(await cache.acquire(ref('b')))()
  await tick()
  assert.deepEqual(log, ['load snap', 'load a', 'load b', 'unload a'])
  cache.retire(snapshot)
  await tick()
  assert.equal(log.at(-1), 'unload snap')
})

test('retired adapters are freed when their last request ends; failed loads are not cached', async () => {
  const { log, engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 8, pino({ level: 'silent' }))
  const release = await cache.acquire(ref('s1'))
  cache.retire(ref('s1'))
  await tick()
  assert.deepEqual(log, ['load s1'])
  release()
  await tick()
  assert.deepEqual(log, ['load s1', 'unload s1'])
  cache.retire(ref('never-loaded'))
  await tick()
  assert.equal(log.at(-1), 'unload never-loaded')
  await assert.rejects(cache.acquire(ref('broken')), /cannot load/)
  await assert.rejects(cache.acquire(ref('broken')), /cannot load/)
  assert.equal(log.filter((l) => l === 'load broken').length, 2)
  assert.equal(cache.size(), 0)
})
