// Test vectors for the zstd path: valid zstd frames built from raw (stored) and RLE blocks, so tests
// need no compressor. Frame layout per RFC 8878 §3.1.1.

const MAGIC = [0x28, 0xb5, 0x2f, 0xfd]
const MAX_BLOCK = 128 * 1024

function blockHeader(last: boolean, type: 0 | 1, size: number): number[] {
  const h = (last ? 1 : 0) | (type << 1) | (size << 3)
  return [h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]
}

/** Window descriptor of the smallest power-of-two window that holds one block of `size` bytes. */
function windowByte(size: number): number {
  let exp = 0
  while (2 ** (10 + exp) < Math.min(size, MAX_BLOCK)) exp++
  return exp << 3
}

/**
 * One frame holding `data` in raw blocks of at most `blockSize` bytes. With `contentSize`, the frame
 * header declares that size (8-byte field) instead, whatever the data really is.
 */
export function rawZstdFrame(
  data: Uint8Array,
  opts: { blockSize?: number; contentSize?: number } = {},
): Buffer {
  const blockSize = Math.min(opts.blockSize ?? MAX_BLOCK, MAX_BLOCK)
  const out: number[] = [...MAGIC]
  if (opts.contentSize === undefined) {
    out.push(0x00, windowByte(data.length))
  } else {
    out.push(0xc0, windowByte(data.length))
    let v = BigInt(opts.contentSize)
    for (let i = 0; i < 8; i++, v >>= 8n) out.push(Number(v & 0xffn))
  }
  const parts: Buffer[] = [Buffer.from(out)]
  let at = 0
  do {
    const size = Math.min(blockSize, data.length - at)
    const last = at + size >= data.length
    parts.push(Buffer.from(blockHeader(last, 0, size)), Buffer.from(data.subarray(at, at + size)))
    at += size
  } while (at < data.length)
  return Buffer.concat(parts)
}

/** A tiny frame that expands to `blocks` × 128 KiB of `byte` through RLE blocks (a zstd bomb). */
export function rleZstdBomb(blocks: number, byte = 0x41): Buffer {
  const out: number[] = [...MAGIC, 0x00, windowByte(MAX_BLOCK)]
  for (let i = 0; i < blocks; i++) out.push(...blockHeader(i === blocks - 1, 1, MAX_BLOCK), byte)
  return Buffer.from(out)
}
