// The store registry and createStore(): TuFT mode names, option checks, unknown modes, duplicate
// names, the file_path alias, and latency events.

import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pino from 'pino'
import { EventBus } from '../core/events.js'
import { freePort } from '../test/helpers/redis.js'
import { createStore, defaultStoreRegistry, StoreRegistry } from './index.js'
import { memoryStoreProvider } from './memory.js'

const log = pino({ level: 'silent' })
let root = ''
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tuft-store-index-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('store registry', () => {
  it('maps every TuFT mode name, in any case, to its provider', () => {
    const registry = defaultStoreRegistry()
    const expect: Record<string, string> = {
      DISABLE: 'memory',
      disabled: 'memory',
      memory: 'memory',
      None: 'memory',
      FILE: 'file',
      file: 'file',
      file_redis: 'file',
      REDIS: 'redis',
      redis: 'redis',
      Redis_Url: 'redis',
    }
    for (const [mode, name] of Object.entries(expect)) assert.equal(registry.get(mode).name, name, mode)
  })

  it('rejects an unknown mode, listing the known ones', async () => {
    await assert.rejects(createStore({ mode: 'sqlite' }, { log }), {
      code: 'TUFT_CONFIG',
      message:
        "Unknown persistence mode 'sqlite'; known modes: disable, disabled, file, file_redis, memory, none, redis, redis_url",
    })
  })

  it('refuses a provider whose name or alias is taken', () => {
    const registry = defaultStoreRegistry()
    assert.throws(() => registry.register(memoryStoreProvider), {
      code: 'TUFT_CONFIG',
      message: /already taken by 'memory'/,
    })
    assert.throws(
      () =>
        new StoreRegistry()
          .register({ ...memoryStoreProvider, name: 'x' })
          .register({ ...memoryStoreProvider, name: 'y', aliases: ['X'] }),
      {
        code: 'TUFT_CONFIG',
        message: "Store mode 'x' of provider 'y' is already taken by 'x'",
      },
    )
  })
})

describe('createStore', () => {
  it('defaults to memory and ignores options meant for other services', async () => {
    const store = await createStore({ future_ttl_seconds: 60, namespace: 'tuft' }, { log })
    assert.equal(store.name, 'memory')
    await store.close()
  })

  it("opens a file store at TuFT's file_path", async () => {
    const dir = join(root, 'by-file-path')
    const store = await createStore(
      { mode: 'FILE', file_path: dir, namespace: 'tuft', future_ttl_seconds: null },
      { log },
    )
    assert.equal(store.name, 'file')
    await store.put('k', 1)
    assert.equal(await readFile(join(dir, 'LOCK'), 'utf8'), `${process.pid}\n`)
    await store.close()
  })

  it('checks options against the provider schema', async () => {
    await assert.rejects(createStore({ mode: 'redis', namespace: 'has:colon' }, { log }), {
      code: 'TUFT_CONFIG',
      message: /Invalid options for persistence mode 'redis': persistence\.namespace: /,
    })
    await assert.rejects(createStore({ mode: 'file', path: join(root, 'x'), compact_bytes: 10 }, { log }), {
      code: 'TUFT_CONFIG',
      message: /persistence\.compact_bytes: /,
    })
  })

  it('fails (never falls back) when the configured Redis cannot be reached', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`
    await assert.rejects(createStore({ mode: 'REDIS', redis_url: url, connect_timeout_ms: 200 }, { log }), {
      code: 'TUFT_PERSISTENCE',
      message: new RegExp(`cannot reach Redis at ${url}`),
    })
  })

  it('reports the latency of every operation, failed ones included, when given an event bus', async () => {
    const events = new EventBus()
    const seen: string[] = []
    events.on('store.op', (e) => {
      assert.ok(e.ms >= 0)
      seen.push(`${e.store}.${e.op}`)
    })
    const store = await createStore({ mode: 'memory' }, { log, events })
    await store.put('k', 1)
    await store.get('k')
    await store.scan('')
    await store.delete('k', { ifVersion: 1 })
    await assert.rejects(store.get(''), { code: 'TUFT_PERSISTENCE' })
    await store.close()
    assert.deepEqual(seen, ['memory.put', 'memory.get', 'memory.scan', 'memory.delete', 'memory.get'])
  })
})
