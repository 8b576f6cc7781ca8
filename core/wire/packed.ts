// Packed little-endian numeric arrays as they travel in protobuf `bytes` fields (spec §1.11.5, §5).
// Reads copy into fresh, aligned typed arrays, because decoded Buffers are slices at any offset.

import { endianness } from 'node:os'
import { tuftError } from '../errors.js'

// Every platform Node supports in practice (x64, arm64) is little-endian; the byte copies below rely on it.
if (endianness() !== 'LE') throw new Error('TuFT wire codecs require a little-endian host')

/**
 * `length`, not `byteLength`: protobufjs decodes an empty (unset) `bytes` field as its default, an
 * empty Array, which has no byteLength.
 */
function copyAligned(bytes: Uint8Array, elementSize: number, what: string): ArrayBuffer {
  if (bytes.length % elementSize !== 0) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `${what}: ${bytes.length} bytes is not a multiple of the element size ${elementSize}`,
    )
  }
  const out = new Uint8Array(bytes.length)
  out.set(bytes)
  return out.buffer
}

export function readFloat32(bytes: Uint8Array, what: string): Float32Array {
  return new Float32Array(copyAligned(bytes, 4, what))
}

export function readInt32(bytes: Uint8Array, what: string): Int32Array {
  return new Int32Array(copyAligned(bytes, 4, what))
}

/** bfloat16 is the upper half of a float32: widen by shifting each 16-bit word up. */
export function readBfloat16(bytes: Uint8Array, what: string): Float32Array {
  const halves = new Uint16Array(copyAligned(bytes, 2, what))
  const words = new Uint32Array(halves.length)
  for (let i = 0; i < halves.length; i++) words[i] = halves[i]! << 16
  return new Float32Array(words.buffer)
}

/** int64 values narrowed to int32; anything outside the int32 range is a bad request (token ids, indices). */
export function readInt64AsInt32(bytes: Uint8Array, what: string): Int32Array {
  const words = new Int32Array(copyAligned(bytes, 8, what))
  const out = new Int32Array(words.length / 2)
  for (let i = 0; i < out.length; i++) {
    const lo = words[2 * i]!
    const hi = words[2 * i + 1]!
    // In range exactly when the high word is the sign extension of the low word.
    if (hi !== lo >> 31) {
      throw tuftError('TUFT_BAD_REQUEST', `${what}: int64 value at index ${i} does not fit in 32 bits`)
    }
    out[i] = lo
  }
  return out
}

/** int64 values as JS numbers (offsets, CSR indices), rejecting anything beyond 2^53. */
export function readInt64AsNumber(bytes: Uint8Array, what: string): number[] {
  const words = new Int32Array(copyAligned(bytes, 8, what))
  const out: number[] = new Array(words.length / 2)
  for (let i = 0; i < out.length; i++) {
    const lo = words[2 * i]! >>> 0
    const hi = words[2 * i + 1]!
    const value = hi * 2 ** 32 + lo
    if (!Number.isSafeInteger(value)) {
      throw tuftError('TUFT_BAD_REQUEST', `${what}: int64 value at index ${i} is out of range`)
    }
    out[i] = value
  }
  return out
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice()
}

export function writeFloat32(values: ArrayLike<number>): Uint8Array {
  return bytesOf(values instanceof Float32Array ? values : Float32Array.from(values))
}

export function writeInt32(values: ArrayLike<number>): Uint8Array {
  return bytesOf(values instanceof Int32Array ? values : Int32Array.from(values))
}

/** Integers widened to packed int64; a value that is not a safe integer is a bad request. */
export function writeInt64(values: ArrayLike<number>, what: string): Uint8Array {
  const words = new Int32Array(values.length * 2)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    if (!Number.isSafeInteger(v)) {
      throw tuftError('TUFT_BAD_REQUEST', `${what}: value at index ${i} (${v}) is not an integer`)
    }
    words[2 * i] = v >>> 0
    words[2 * i + 1] = Math.floor(v / 2 ** 32)
  }
  return new Uint8Array(words.buffer)
}
