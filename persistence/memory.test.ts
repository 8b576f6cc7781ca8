// Memory store: the shared conformance suite plus the periodic sweep of expired keys.

import assert from 'node:assert/strict'
import { it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { storeConformance } from './conformance.js'
import { MemoryStore } from './memory.js'

storeConformance('memory', {
  open: async () => new MemoryStore(),
  durable: false,
  shared: false,
})

it('memory store sweeps expired keys without being read', async () => {
  const store = new MemoryStore({ sweep_interval_ms: 20 })
  await store.put('a', 1, { ttlMs: 30 })
  await store.put('b', 2)
  const table = (store as unknown as { table: { size: number } }).table
  assert.equal(table.size, 2)
  await sleep(120)
  assert.equal(table.size, 1)
  await store.close()
})
