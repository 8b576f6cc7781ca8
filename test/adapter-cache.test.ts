// The sampler adapter cache: loads once, keeps at most `limit` adapters resident (least recently used
// go first, never one a request is using), and frees retired adapters once their last request ends.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import type { AdapterRef, SamplingEngine } from '../core/engine.js'
import { AdapterCache, type LocalAdapter } from '../core/services/adapter-cache.js'

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

const ref = (id: string): LocalAdapter => ({ kind: 'peft', id, dir: `/ckpt/${id}` })
const tick = () => new Promise((r) => setTimeout(r, 1))

test('loads once, evicts least recently used beyond the limit, never an adapter in use', async () => {
  const { log, engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 2, pino({ level: 'silent' }))
  const releaseA = (await cache.acquire(ref('a'))).release
  ;(await cache.acquire(ref('b'))).release()
  ;(await cache.acquire(ref('a'))).release()
  assert.deepEqual(log, ['load a', 'load b'])
  ;(await cache.acquire(ref('c'))).release()
  await tick()
  // b is the least recently used idle adapter; a is pinned by a running request.
  assert.deepEqual(log, ['load a', 'load b', 'load c', 'unload b'])
  assert.equal(cache.size(), 2)
  releaseA()
  releaseA()
  ;(await cache.acquire(ref('d'))).release()
  await tick()
  assert.deepEqual(log.slice(4), ['load d', 'unload a'])
})

test('in-memory snapshots are never evicted (they cannot be reloaded); only retire frees them', async () => {
  const { log, engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 1, pino({ level: 'silent' }))
  const snapshot: LocalAdapter = { kind: 'snapshot', id: 'snap' }
  ;(await cache.acquire(snapshot)).release()
  ;(await cache.acquire(ref('a'))).release()
  ;(await cache.acquire(ref('b'))).release()
  await tick()
  assert.deepEqual(log, ['load snap', 'load a', 'load b', 'unload a'])
  cache.retire(snapshot)
  await tick()
  assert.equal(log.at(-1), 'unload snap')
})

test('retired adapters are freed when their last request ends; failed loads are not cached', async () => {
  const { log, engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 8, pino({ level: 'silent' }))
  const release = (await cache.acquire(ref('s1'))).release
  cache.retire(ref('s1'))
  await tick()
  assert.deepEqual(log, ['load s1'])
  release()
  await tick()
  assert.deepEqual(log, ['load s1', 'unload s1'])
  // A snapshot nobody sampled still lives in the engine; a PEFT directory never loaded does not.
  cache.retire({ kind: 'snapshot', id: 'never-sampled' })
  cache.retire(ref('never-loaded'))
  await tick()
  assert.equal(log.at(-1), 'unload never-sampled')
  await assert.rejects(cache.acquire(ref('broken')), /cannot load/)
  await assert.rejects(cache.acquire(ref('broken')), /cannot load/)
  assert.equal(log.filter((l) => l === 'load broken').length, 2)
  assert.equal(cache.size(), 0)
})

test('PEFT directories are staged before loading and released after unloading', async () => {
  const { log, engine } = fakeEngine()
  const loaded: AdapterRef[] = []
  const load = engine.loadAdapter.bind(engine)
  Object.assign(engine, {
    staging: {
      async stage(id: string, dir: string) {
        log.push(`stage ${id} ${dir}`)
        return `https://engine.example/${id}`
      },
      async release(id: string, uri: string) {
        log.push(`release ${id} ${uri}`)
      },
    },
    loadAdapter: (r: AdapterRef) => {
      loaded.push(r)
      return load(r)
    },
  })
  const cache = new AdapterCache(() => engine, 1, pino({ level: 'silent' }))
  const pinned = await cache.acquire(ref('a'))
  assert.deepEqual(pinned.ref, { kind: 'peft', id: 'a', uri: 'https://engine.example/a' })
  assert.deepEqual(loaded, [pinned.ref])
  pinned.release()
  cache.retire(ref('a'))
  await tick()
  assert.deepEqual(log, ['stage a /ckpt/a', 'load a', 'unload a', 'release a https://engine.example/a'])
  // A staged copy the engine could not load is released at once.
  await assert.rejects(cache.acquire(ref('broken')), /cannot load/)
  assert.equal(log.at(-1), 'release broken https://engine.example/broken')
})

test('without a staging hook an engine gets file: URLs of the directories', async () => {
  const { engine } = fakeEngine()
  const cache = new AdapterCache(() => engine, 1, pino({ level: 'silent' }))
  const pinned = await cache.acquire(ref('a'))
  assert.deepEqual(pinned.ref, { kind: 'peft', id: 'a', uri: 'file:///ckpt/a' })
})
