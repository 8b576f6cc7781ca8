// zstd request bodies (spec §1.10): frame headers checked before any allocation, then a streaming
// decode that stops as soon as the output passes the cap, so a small bomb cannot exhaust memory.

import { Decompress } from 'fzstd'
import { isTuftError, tuftError } from '../errors.js'

const FRAME_MAGIC = 0xfd2fb528
const SKIPPABLE_MASK = 0xfffffff0
const SKIPPABLE_MAGIC = 0x184d2a50
const MAX_BLOCK = 128 * 1024
/** Windows up to this size are accepted even when the cap is smaller (ordinary encoders use ≤ 8 MiB). */
const MIN_WINDOW_ALLOWANCE = 8 * 1024 * 1024

function bad(message: string): Error {
  return tuftError('TUFT_BAD_REQUEST', `Invalid zstd body: ${message}`)
}

function tooLarge(maxBytes: number): Error {
  return tuftError('TUFT_PAYLOAD_TOO_LARGE', `Decompressed forward_backward body exceeds ${maxBytes} bytes`)
}

function readLE(buf: Uint8Array, at: number, n: number): number {
  let v = 0
  for (let i = n - 1; i >= 0; i--) v = v * 256 + buf[at + i]!
  return v
}

/** Walks every frame and block header; throws on malformed input or a declared size above the limits. */
function checkFrames(buf: Uint8Array, maxBytes: number): void {
  let at = 0
  if (buf.byteLength === 0) throw bad('empty body')
  while (at < buf.byteLength) {
    if (at + 4 > buf.byteLength) throw bad('truncated frame magic')
    const magic = readLE(buf, at, 4)
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      if (at + 8 > buf.byteLength) throw bad('truncated skippable frame')
      at += 8 + readLE(buf, at + 4, 4)
      if (at > buf.byteLength) throw bad('truncated skippable frame')
      continue
    }
    if (magic !== FRAME_MAGIC) throw bad(`unknown frame magic at byte ${at}`)
    at = checkFrame(buf, at + 4, maxBytes)
  }
}

function checkFrame(buf: Uint8Array, start: number, maxBytes: number): number {
  let at = start
  if (at >= buf.byteLength) throw bad('truncated frame header')
  const descriptor = buf[at++]!
  const fcsFlag = descriptor >> 6
  const singleSegment = (descriptor >> 5) & 1
  const hasChecksum = (descriptor >> 2) & 1
  const dictFlag = descriptor & 3
  if (descriptor & 8) throw bad('reserved frame header bit set')
  let windowSize = 0
  if (!singleSegment) {
    if (at >= buf.byteLength) throw bad('truncated frame header')
    const w = buf[at++]!
    const base = 2 ** (10 + (w >> 3))
    windowSize = base + (base / 8) * (w & 7)
  }
  const dictBytes = [0, 1, 2, 4][dictFlag]!
  if (dictBytes && readLE(buf, at, dictBytes) !== 0) throw bad('dictionaries are not supported')
  at += dictBytes
  const fcsBytes = [singleSegment, 2, 4, 8][fcsFlag]!
  if (at + fcsBytes > buf.byteLength) throw bad('truncated frame header')
  const contentSize = fcsBytes ? readLE(buf, at, fcsBytes) + (fcsBytes === 2 ? 256 : 0) : -1
  at += fcsBytes
  if (singleSegment) windowSize = contentSize
  if (contentSize > maxBytes) throw tooLarge(maxBytes)
  if (windowSize > Math.max(maxBytes, MIN_WINDOW_ALLOWANCE)) throw tooLarge(maxBytes)
  for (let last = 0; !last; ) {
    if (at + 3 > buf.byteLength) throw bad('truncated block header')
    const header = readLE(buf, at, 3)
    at += 3
    last = header & 1
    const type = (header >> 1) & 3
    const size = header >>> 3
    if (type === 3) throw bad('reserved block type')
    if (size > MAX_BLOCK) throw bad('block larger than 128 KiB')
    at += type === 1 ? 1 : size
    if (at > buf.byteLength) throw bad('truncated block')
  }
  const end = at + (hasChecksum ? 4 : 0)
  if (end > buf.byteLength) throw bad('truncated checksum')
  return end
}

/** Decompresses a zstd body, refusing more than `maxBytes` of output (413) and malformed frames (400). */
export function decompressZstd(body: Uint8Array, maxBytes: number): Uint8Array {
  checkFrames(body, maxBytes)
  const parts: Uint8Array[] = []
  let total = 0
  const stream = new Decompress((chunk) => {
    total += chunk.byteLength
    if (total > maxBytes) throw tooLarge(maxBytes)
    if (chunk.byteLength) parts.push(chunk)
  })
  try {
    stream.push(body, true)
  } catch (err) {
    if (isTuftError(err)) throw err
    throw bad(err instanceof Error ? err.message : String(err))
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
