// File store: the shared conformance suite (durable) plus torn journal tails, corruption, compaction,
// a SIGKILLed writer process, and the directory lock.

import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import pino from 'pino'
import { newSpace, storeConformance } from './conformance.js'
import { type FileConfig, FileStore } from './file.js'

const log = pino({ level: 'silent' })
let root = ''
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tuft-file-store-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

function openStore(dir: string, extra: Partial<FileConfig> = {}): Promise<FileStore> {
  return FileStore.open(
    { path: dir, compact_bytes: 1 << 26, snapshot_interval_ms: 300_000, sweep_interval_ms: 60_000, ...extra },
    log,
  )
}

const freshDir = (): string => join(root, newSpace())

storeConformance('file', { open: (space) => openStore(join(root, space)), durable: true, shared: false })

describe('file store journal', () => {
  it('drops a torn last record and keeps appending after it', async () => {
    const dir = freshDir()
    let s = await openStore(dir)
    await s.put('a', 1)
    await s.put('b', 2)
    await s.close()
    await appendFile(join(dir, 'journal.log'), '0badc0de {"o":"p","k":"c","v":99,"e":null,"d":')
    s = await openStore(dir)
    assert.deepEqual(
      (await s.scan('')).map((f) => f.key),
      ['a', 'b'],
    )
    await s.put('d', 4)
    await s.close()
    // A complete line with a wrong checksum at the end is a torn write too.
    await appendFile(join(dir, 'journal.log'), '00000000 {"o":"d","k":"a"}\n')
    s = await openStore(dir)
    assert.deepEqual(
      (await s.scan('')).map((f) => [f.key, f.doc.value]),
      [
        ['a', 1],
        ['b', 2],
        ['d', 4],
      ],
    )
    await s.close()
  })

  it('refuses a journal with an invalid record before valid ones, and leaves it unlocked', async () => {
    const dir = freshDir()
    const s = await openStore(dir)
    await s.put('a', 'first')
    await s.put('b', 'second')
    await s.close()
    const path = join(dir, 'journal.log')
    await writeFile(path, (await readFile(path, 'utf8')).replace('first', 'firsT'))
    for (let i = 0; i < 2; i++) {
      await assert.rejects(openStore(dir), { code: 'TUFT_PERSISTENCE', message: /corrupt at byte 0/ })
    }
  })

  it('snapshots and truncates the journal once it grows past compact_bytes', async () => {
    const dir = freshDir()
    let s = await openStore(dir, { compact_bytes: 4096 })
    const versions: number[] = []
    for (let i = 0; i < 200; i++) versions.push((await s.put(`k/${i}`, { i, pad: 'x'.repeat(100) }))!)
    for (let i = 0; i < 200; i += 2) await s.delete(`k/${i}`)
    assert.ok((await stat(join(dir, 'snapshot.db'))).size > 4096)
    assert.ok((await stat(join(dir, 'journal.log'))).size < 4096)
    await s.close()
    s = await openStore(dir)
    const found = await s.scan<{ i: number }>('k/')
    assert.equal(found.length, 100)
    for (const f of found) {
      assert.equal(f.doc.value.i % 2, 1)
      assert.equal(f.doc.version, versions[f.doc.value.i])
    }
    assert.ok((await s.put('new', 1))! > Math.max(...versions))
    await s.close()
  })

  it('reaches the same state when a crash left the pre-snapshot journal in place', async () => {
    const dir = freshDir()
    let s = await openStore(dir)
    await s.put('kept', 1)
    await s.put('changed', 'old')
    await s.put('removed', 1)
    await s.put('changed', 'new')
    await s.delete('removed')
    await s.close()
    const journal = await readFile(join(dir, 'journal.log'))
    s = await openStore(dir, { snapshot_interval_ms: 100 })
    const before = await s.scan('')
    await s.put('after', 1)
    await s.delete('after')
    for (let i = 0; i < 100 && (await stat(join(dir, 'journal.log'))).size > 0; i++) await sleep(20)
    assert.equal((await stat(join(dir, 'journal.log'))).size, 0, 'the periodic snapshot ran')
    await s.close()
    await writeFile(join(dir, 'journal.log'), journal)
    s = await openStore(dir)
    assert.deepEqual(await s.scan(''), before)
    await s.close()
  })
})

describe('file store crash safety', () => {
  it('stops serving (and reports itself unhealthy) after a failed journal write; a reopen recovers what was acknowledged', async () => {
    const dir = freshDir()
    const s = await openStore(dir)
    await s.put('acked', 1)
    assert.deepEqual(await s.health(), { ok: true })
    // Closing the journal under the store makes the next write fail as a broken disk would.
    await (s as unknown as { journal: { close(): Promise<void> } }).journal.close()
    await assert.rejects(s.put('lost', 2), {
      code: 'TUFT_PERSISTENCE',
      message: /failed; restart to recover/,
    })
    await assert.rejects(s.get('acked'), { code: 'TUFT_PERSISTENCE', message: /failed; restart to recover/ })
    const health = await s.health()
    assert.equal(health.ok, false, 'healthz reports the store as degraded')
    assert.doesNotMatch(health.message ?? '', new RegExp(dir), 'no path in a public answer')
    await s.close()
    const again = await openStore(dir)
    assert.deepEqual(
      (await again.scan('')).map((f) => f.key),
      ['acked'],
    )
    await again.close()
  })

  for (const killAfter of [150, 600]) {
    it(`keeps every acknowledged write of a writer SIGKILLed after ${killAfter} acks`, async () => {
      const dir = freshDir()
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures/file-writer.ts'), dir],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      )
      const acked = new Map<string, number>()
      const lines = createInterface({ input: child.stdout! })
      const exited = once(child, 'exit')
      for await (const line of lines) {
        const [word, key, version] = line.split(' ')
        if (word !== 'ack') continue
        acked.set(key!, Number(version))
        if (acked.size === killAfter) child.kill('SIGKILL')
      }
      const [, signal] = await exited
      assert.equal(signal, 'SIGKILL', 'the writer was killed while writing')
      const s = await openStore(dir)
      for (const [key, version] of acked) {
        const doc = await s.get<{ n: number }>(key)
        assert.ok(doc !== null, `acknowledged ${key} is missing after the crash`)
        assert.equal(doc.version, version)
        assert.equal(`k/${doc.value.n}`, key)
      }
      await s.close()
    })
  }
})

describe('file store lock', () => {
  it('refuses a second open of a directory in the same process', async () => {
    const dir = freshDir()
    const s = await openStore(dir)
    await assert.rejects(openStore(dir), {
      code: 'TUFT_PERSISTENCE',
      message: /already open in this process/,
    })
    await s.close()
    await (await openStore(dir)).close()
  })

  it('refuses a directory locked by a live process and takes over once it is gone', async () => {
    const dir = freshDir()
    await (await openStore(dir)).close()
    const other: ChildProcess = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    })
    try {
      await writeFile(join(dir, 'LOCK'), `${other.pid}\n`)
      await assert.rejects(openStore(dir), {
        code: 'TUFT_PERSISTENCE',
        message: new RegExp(`locked by running process ${other.pid}`),
      })
    } finally {
      other.kill('SIGKILL')
      await once(other, 'exit')
    }
    const s = await openStore(dir)
    assert.equal(await readFile(join(dir, 'LOCK'), 'utf8'), `${process.pid}\n`)
    await s.close()
    await assert.rejects(stat(join(dir, 'LOCK')), { code: 'ENOENT' })
  })
})
