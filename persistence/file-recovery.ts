// Opening the file store's directory: load the snapshot, replay the journal over it, and cut off a
// torn final write so that new records are appended after the last valid one.

import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { tuftError } from '../core/errors.js'
import { decodeSnapshot, parseLines } from './file-format.js'
import { Table } from './table.js'

export interface Files {
  dir: string
  journal: string
  snapshot: string
  snapshotTmp: string
}

export function storeFiles(dir: string): Files {
  return {
    dir,
    journal: join(dir, 'journal.log'),
    snapshot: join(dir, 'snapshot.db'),
    snapshotTmp: join(dir, 'snapshot.tmp'),
  }
}

export interface Recovered {
  seq: number
  table: Table
  journalBytes: number
}

export async function recover(files: Files, log: Logger): Promise<Recovered> {
  const table = new Table()
  let seq = 0
  const snapshot = await readIfExists(files.snapshot)
  if (snapshot !== null) {
    const content = decodeSnapshot(snapshot, files.snapshot)
    seq = content.seq
    for (const [key, entry] of content.entries) table.set(key, entry)
  }
  await rm(files.snapshotTmp, { force: true })
  const journal = (await readIfExists(files.journal)) ?? Buffer.alloc(0)
  const parsed = parseLines(journal, files.journal)
  for (const r of parsed.records) {
    if (r.o === 'p') {
      table.set(r.k, { text: JSON.stringify(r.d), version: r.v, expiresAt: r.e })
      seq = Math.max(seq, r.v)
    } else if (r.o === 'd') {
      table.delete(r.k)
    } else {
      throw tuftError('TUFT_PERSISTENCE', `${files.journal} holds a '${r.o}' record`)
    }
  }
  if (parsed.tornBytes > 0) {
    // A write cut short by a crash: it was never acknowledged, so it is dropped.
    log.warn({ file: files.journal, bytes: parsed.tornBytes }, 'dropping the torn tail of the journal')
    const fh = await open(files.journal, 'r+')
    try {
      await fh.truncate(parsed.validBytes)
      await fh.datasync()
    } finally {
      await fh.close()
    }
  }
  table.sweep()
  log.info({ dir: files.dir, keys: table.size, replayed: parsed.records.length }, 'file store recovered')
  return { seq, table, journalBytes: parsed.validBytes }
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
}
