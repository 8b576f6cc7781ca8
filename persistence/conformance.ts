// The one conformance suite every Store provider passes (node:test): reads, writes, scans, versions,
// compare-and-set, TTL, JSON fidelity, large values, and durability or sharing where declared.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Json, Store } from '../core/persistence.js'

export interface ConformanceTarget {
  /** Opens the store of a space; spaces never see each other's keys. */
  open(space: string): Promise<Store>
  /** The same space keeps every acknowledged write across close() and a later open(). */
  durable: boolean
  /** Two open() of the same space may be used at the same time and see one data set (e.g. Redis). */
  shared: boolean
}

const SAMPLE: Json = {
  text: 'héllo wörld 🚀 "quoted" \\ back\nslash\ttab\u0000nul',
  ints: [0, -1, 1, 2 ** 53 - 1, -(2 ** 53 - 1)],
  floats: [0.1, -2.5e-8, 1.7976931348623157e308],
  flags: [true, false, null],
  nested: { a: { b: { c: [[], {}, [{}]] } }, '': 'empty key', 'with:colon*star?': 1 },
  empty: '',
}

export function storeConformance(label: string, target: ConformanceTarget): void {
  describe(`Store conformance: ${label}`, () => {
    const opened: Store[] = []
    const fresh = async (space = newSpace()): Promise<Store> => {
      const store = await target.open(space)
      opened.push(store)
      return store
    }
    afterEach(async () => {
      // Stores a test already closed reject nothing on a second close.
      await Promise.all(opened.splice(0).map((s) => s.close()))
    })

    it('reads back what it wrote, with a version', async () => {
      const s = await fresh()
      assert.equal(await s.get('missing'), null)
      const v = await s.put('a', SAMPLE)
      assert.ok(typeof v === 'number' && v >= 1)
      assert.deepEqual(await s.get('a'), { value: SAMPLE, version: v })
      for (const value of [null, true, 0, -3.25, 'plain', [], {}] as Json[]) {
        const version = await s.put('scalar', value)
        assert.deepEqual(await s.get('scalar'), { value, version })
      }
    })

    it('hands out copies, never the stored object', async () => {
      const s = await fresh()
      const value = { list: [1, 2] }
      await s.put('k', value)
      value.list.push(3)
      const doc = await s.get<{ list: number[] }>('k')
      assert.deepEqual(doc?.value, { list: [1, 2] })
      doc?.value.list.push(4)
      assert.deepEqual((await s.get('k'))?.value, { list: [1, 2] })
    })

    it('increases the version on every write and never reuses one after delete', async () => {
      const s = await fresh()
      const v1 = await s.put('k', 1)
      const v2 = await s.put('k', 2)
      assert.ok(v1 !== null && v2 !== null && v2 > v1)
      assert.equal(await s.delete('k'), true)
      assert.equal(await s.delete('k'), false)
      assert.equal(await s.get('k'), null)
      const v3 = await s.put('k', 3)
      assert.ok(v3 !== null && v3 > v2)
      assert.equal(await s.put('k', 4, { ifVersion: v2 }), null, 'a stale version must not match a new key')
    })

    it('compare-and-set writes only on the expected version', async () => {
      const s = await fresh()
      const v1 = await s.put('k', 'first', { ifVersion: 0 })
      assert.ok(v1 !== null)
      assert.equal(await s.put('k', 'again', { ifVersion: 0 }), null)
      assert.equal(await s.put('k', 'stale', { ifVersion: v1 + 1000 }), null)
      assert.deepEqual(await s.get('k'), { value: 'first', version: v1 })
      const v2 = await s.put('k', 'second', { ifVersion: v1 })
      assert.ok(v2 !== null && v2 > v1)
      assert.equal(await s.put('k', 'late', { ifVersion: v1 }), null)
      assert.deepEqual(await s.get('k'), { value: 'second', version: v2 })
    })

    it('deletes conditionally on the version', async () => {
      const s = await fresh()
      const v = await s.put('k', 1)
      assert.ok(v !== null)
      assert.equal(await s.delete('k', { ifVersion: v + 1 }), false)
      assert.equal((await s.get('k'))?.version, v)
      assert.equal(await s.delete('k', { ifVersion: v }), true)
      assert.equal(await s.get('k'), null)
      assert.equal(await s.delete('k', { ifVersion: v }), false)
    })

    it('lets exactly one of many concurrent compare-and-sets win', async () => {
      const s = await fresh()
      const created = await Promise.all(
        Array.from({ length: 16 }, (_, i) => s.put('new', i, { ifVersion: 0 })),
      )
      assert.equal(created.filter((v) => v !== null).length, 1)
      const base = await s.put('k', 'base')
      assert.ok(base !== null)
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) => s.put('k', `writer-${i}`, { ifVersion: base })),
      )
      const winners = results.flatMap((v, i) => (v === null ? [] : [{ v, i }]))
      assert.equal(winners.length, 1)
      assert.deepEqual(await s.get('k'), { value: `writer-${winners[0]!.i}`, version: winners[0]!.v })
    })

    it('scans a prefix in key order, literally, without other keys', async () => {
      const s = await fresh()
      const keys = ['run/b', 'run/a', 'run/c/1', 'run/c', 'ru', 'runx', 'other/run/a', 'run*', 'run?']
      for (const key of [...keys].reverse()) await s.put(key, { key })
      const found = await s.scan<{ key: string }>('run/')
      assert.deepEqual(
        found.map((f) => f.key),
        ['run/a', 'run/b', 'run/c', 'run/c/1'],
      )
      for (const f of found) assert.equal(f.doc.value.key, f.key)
      assert.deepEqual(
        (await s.scan('run*')).map((f) => f.key),
        ['run*'],
      )
      assert.deepEqual(
        (await s.scan('run?')).map((f) => f.key),
        ['run?'],
      )
      assert.deepEqual(
        (await s.scan('')).map((f) => f.key),
        [...keys].sort(),
      )
      assert.deepEqual(await s.scan('nothing/'), [])
    })

    it('scans many keys with their current versions', async () => {
      const s = await fresh()
      const versions = new Map<string, number>()
      await Promise.all(
        Array.from({ length: 600 }, async (_, i) => {
          const key = `bulk/${String(i).padStart(4, '0')}`
          versions.set(key, (await s.put(key, i))!)
        }),
      )
      await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(`zz/${i}`, i)))
      const found = await s.scan<number>('bulk/')
      assert.equal(found.length, 600)
      found.forEach((f, i) => {
        assert.equal(f.key, `bulk/${String(i).padStart(4, '0')}`)
        assert.deepEqual(f.doc, { value: i, version: versions.get(f.key) })
      })
    })

    it('keeps spaces apart', async () => {
      const space = newSpace()
      const a = await fresh(space)
      const b = await fresh(`${space}-other`)
      await a.put('k', 'from a')
      await a.put('shared/1', 'a')
      await b.put('shared/2', 'b')
      assert.equal(await b.get('k'), null)
      assert.deepEqual(
        (await a.scan('')).map((f) => f.key),
        ['k', 'shared/1'],
      )
      assert.deepEqual(
        (await b.scan('')).map((f) => f.key),
        ['shared/2'],
      )
      assert.equal(await b.delete('k'), false)
      assert.equal((await a.get('k'))?.value, 'from a')
    })

    it('expires keys after their TTL and forgets the TTL on a plain overwrite', async () => {
      const s = await fresh()
      await s.put('short', 1, { ttlMs: 150 })
      await s.put('long', 2, { ttlMs: 60_000 })
      await s.put('cleared', 3, { ttlMs: 150 })
      await s.put('cleared', 4)
      await s.put('extended', 5, { ttlMs: 150 })
      await s.put('extended', 6, { ttlMs: 60_000 })
      assert.equal((await s.get('short'))?.value, 1)
      await sleep(300)
      assert.equal(await s.get('short'), null)
      assert.deepEqual(
        (await s.scan('')).map((f) => f.key),
        ['cleared', 'extended', 'long'],
      )
      assert.equal(await s.delete('short'), false)
      assert.ok((await s.put('short', 'again', { ifVersion: 0 })) !== null, 'an expired key counts as absent')
    })

    it('stores large values', async () => {
      const s = await fresh()
      const big = {
        text: 'x'.repeat(4 * 1024 * 1024),
        numbers: Array.from({ length: 100_000 }, (_, i) => i / 7),
      }
      const v = await s.put('big', big)
      assert.deepEqual(await s.get('big'), { value: big, version: v })
      assert.equal((await s.scan('big'))[0]?.doc.value !== undefined, true)
    })

    it('rejects bad arguments and use after close with TUFT_PERSISTENCE', async () => {
      const s = await fresh()
      const coded = { code: 'TUFT_PERSISTENCE' }
      await assert.rejects(s.put('', 1), coded)
      await assert.rejects(s.get(''), coded)
      await assert.rejects(s.put('k', 1, { ttlMs: 0 }), coded)
      await assert.rejects(s.put('k', 1, { ttlMs: Number.NaN }), coded)
      await assert.rejects(s.put('k', 1, { ifVersion: -1 }), coded)
      await assert.rejects(s.put('k', undefined as unknown as Json), coded)
      assert.equal(await s.get('k'), null, 'rejected writes leave nothing behind')
      await s.close()
      await s.close()
      await assert.rejects(s.get('k'), coded)
      await assert.rejects(s.put('k', 1), coded)
      await assert.rejects(s.delete('k'), coded)
      await assert.rejects(s.scan(''), coded)
    })

    if (target.durable) {
      it('keeps every acknowledged write across close and reopen', async () => {
        const space = newSpace()
        const s = await fresh(space)
        const v1 = await s.put('kept', SAMPLE)
        await s.put('gone', 1)
        await s.delete('gone')
        await s.put('overwritten', 'old')
        const v2 = await s.put('overwritten', 'new')
        await s.put('expiring', 1, { ttlMs: 100 })
        await s.put('lasting', 1, { ttlMs: 60_000 })
        await s.close()
        await sleep(200)
        const again = await fresh(space)
        assert.deepEqual(await again.get('kept'), { value: SAMPLE, version: v1 })
        assert.deepEqual(await again.get('overwritten'), { value: 'new', version: v2 })
        assert.deepEqual(
          (await again.scan('')).map((f) => f.key),
          ['kept', 'lasting', 'overwritten'],
        )
        const v3 = await again.put('gone', 2)
        assert.ok(v3 !== null && v2 !== null && v3 > v2, 'versions keep increasing after a reopen')
      })
    }

    if (target.shared) {
      it('lets exactly one compare-and-set win across two instances of one space', async () => {
        const space = newSpace()
        const a = await fresh(space)
        const b = await fresh(space)
        const base = await a.put('k', 'base')
        assert.equal((await b.get('k'))?.version, base)
        const results = await Promise.all(
          Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).put('k', i, { ifVersion: base! })),
        )
        assert.equal(results.filter((v) => v !== null).length, 1)
        assert.deepEqual(await a.get('k'), await b.get('k'))
      })
    }
  })
}

let spaces = 0
/** A space name no earlier test used (also a valid Redis namespace and directory name). */
export function newSpace(): string {
  return `s${++spaces}-${randomBytes(4).toString('hex')}`
}
