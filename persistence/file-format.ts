// On-disk format of the file store: checksummed JSON lines (`<crc32 hex> <json>\n`) shared by the
// append-only journal and the snapshot, with torn-tail detection and atomic snapshot replacement.

import { type FileHandle, open, rename } from 'node:fs/promises'
import { crc32 } from 'node:zlib'
import { tuftError } from '../core/errors.js'
import type { Json } from '../core/persistence.js'
import type { Entry } from './table.js'

export const SNAPSHOT_FORMAT = 1

export type FileRecord =
  | { o: 'p'; k: string; v: number; e: number | null; d: Json }
  | { o: 'd'; k: string }
  | { o: 'h'; format: number; seq: number; count: number }

function frame(json: string): string {
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`
}

/** The value is spliced in as the stored JSON text, so it is not serialised twice. */
export function putLine(key: string, entry: Entry): string {
  return frame(
    `{"o":"p","k":${JSON.stringify(key)},"v":${entry.version},"e":${entry.expiresAt},"d":${entry.text}}`,
  )
}

export function deleteLine(key: string): string {
  return frame(JSON.stringify({ o: 'd', k: key }))
}

function headerLine(seq: number, count: number): string {
  return frame(JSON.stringify({ o: 'h', format: SNAPSHOT_FORMAT, seq, count }))
}

export interface ParsedFile {
  records: FileRecord[]
  /** Bytes up to the end of the last valid line. */
  validBytes: number
  /** Bytes after it: a torn final write (never followed by a valid line). */
  tornBytes: number
}

/**
 * Decodes every line. An invalid line is accepted only as the tail of the file (a write cut short by a
 * crash); an invalid line followed by a valid one is corruption and throws.
 */
export function parseLines(buf: Buffer, file: string): ParsedFile {
  const records: FileRecord[] = []
  let validBytes = 0
  let badAt = -1
  let start = 0
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start)
    const end = nl === -1 ? buf.length : nl + 1
    const record = nl === -1 ? null : decodeLine(buf.subarray(start, nl))
    if (record === null) {
      if (badAt === -1) badAt = start
    } else if (badAt !== -1) {
      throw tuftError(
        'TUFT_PERSISTENCE',
        `${file} is corrupt at byte ${badAt}: an invalid record is followed by valid ones`,
      )
    } else {
      records.push(record)
      validBytes = end
    }
    start = end
  }
  return { records, validBytes, tornBytes: buf.length - validBytes }
}

function decodeLine(line: Buffer): FileRecord | null {
  if (line.length < 10 || line[8] !== 0x20) return null
  const body = line.subarray(9)
  if (line.toString('latin1', 0, 8) !== crc32(body).toString(16).padStart(8, '0')) return null
  try {
    const record = JSON.parse(body.toString('utf8')) as FileRecord
    return typeof record === 'object' && record !== null && typeof record.o === 'string' ? record : null
  } catch {
    return null
  }
}

export interface SnapshotContent {
  seq: number
  entries: [string, Entry][]
}

/** Reads a snapshot written by writeSnapshot; anything incomplete or unknown throws. */
export function decodeSnapshot(buf: Buffer, file: string): SnapshotContent {
  const { records, tornBytes } = parseLines(buf, file)
  const header = records[0]
  if (tornBytes > 0 || header?.o !== 'h' || header.format !== SNAPSHOT_FORMAT) {
    throw tuftError('TUFT_PERSISTENCE', `${file} is not a complete format-${SNAPSHOT_FORMAT} snapshot`)
  }
  const entries: [string, Entry][] = []
  for (const r of records.slice(1)) {
    if (r.o !== 'p') throw tuftError('TUFT_PERSISTENCE', `${file} holds a '${r.o}' record`)
    entries.push([r.k, { text: JSON.stringify(r.d), version: r.v, expiresAt: r.e }])
  }
  if (entries.length !== header.count) {
    throw tuftError(
      'TUFT_PERSISTENCE',
      `${file} has ${entries.length} entries, its header says ${header.count}`,
    )
  }
  return { seq: header.seq, entries }
}

const CHUNK = 1 << 20

/** Writes a snapshot to tmpPath, fsyncs it, renames it over finalPath and fsyncs the directory. */
export async function writeSnapshot(
  tmpPath: string,
  finalPath: string,
  dir: string,
  seq: number,
  entries: [string, Entry][],
): Promise<void> {
  const fh = await open(tmpPath, 'w')
  try {
    let chunk = headerLine(seq, entries.length)
    for (const [key, entry] of entries) {
      chunk += putLine(key, entry)
      if (chunk.length >= CHUNK) {
        await writeAll(fh, chunk)
        chunk = ''
      }
    }
    await writeAll(fh, chunk)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmpPath, finalPath)
  await syncDir(dir)
}

/** Writes all of text at the file position (the end, for a file opened to append). */
export async function writeAll(fh: FileHandle, text: string): Promise<void> {
  const buf = Buffer.from(text, 'utf8')
  for (let done = 0; done < buf.length; ) {
    done += (await fh.write(buf, done, buf.length - done)).bytesWritten
  }
}

/** Makes a rename or a file creation in dir durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
