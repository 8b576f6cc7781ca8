// Protobuf `Tensor` <-> WireTensor (spec §5.2): dtype codes, dense row-major bytes, and CSR matrices
// densified on receipt. Integer tensors become Int32Array (token ids), floats Float32Array.

import { tuftError } from '../errors.js'
import {
  readBfloat16,
  readFloat32,
  readInt32,
  readInt64AsInt32,
  readInt64AsNumber,
  writeFloat32,
  writeInt32,
  writeInt64,
} from './packed.js'
import { DTYPE, int64ToNumber, type PbTensor } from './proto-root.js'

export type WireDtype = 'float32' | 'int64' | 'int32' | 'bfloat16'

/** A dense tensor: `data` holds product(shape) elements in row-major order. */
export interface WireTensor {
  dtype: WireDtype
  shape: number[]
  data: Float32Array | Int32Array
}

const DTYPE_CODES: Record<WireDtype, number> = {
  float32: DTYPE.FLOAT32,
  int64: DTYPE.INT64,
  int32: DTYPE.INT32,
  bfloat16: DTYPE.BFLOAT16,
}

const DTYPE_NAMES = new Map<number, WireDtype>(
  Object.entries(DTYPE_CODES).map(([name, code]) => [code, name as WireDtype]),
)

export function dtypeName(code: number | undefined, what: string): WireDtype {
  const name = DTYPE_NAMES.get(code ?? DTYPE.UNSPECIFIED)
  if (!name) throw tuftError('TUFT_BAD_REQUEST', `${what}: unsupported dtype code ${code ?? 0}`)
  return name
}

export function dtypeCode(name: WireDtype): number {
  return DTYPE_CODES[name]
}

export function isFloatDtype(dtype: WireDtype): boolean {
  return dtype === 'float32' || dtype === 'bfloat16'
}

export function elementCount(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Reads packed values of `dtype`; integer types are narrowed to int32 with range checks. */
export function readValues(dtype: WireDtype, bytes: Uint8Array, what: string): Float32Array | Int32Array {
  switch (dtype) {
    case 'float32':
      return readFloat32(bytes, what)
    case 'bfloat16':
      return readBfloat16(bytes, what)
    case 'int32':
      return readInt32(bytes, what)
    case 'int64':
      return readInt64AsInt32(bytes, what)
  }
}

/** float32 -> bfloat16 with round-to-nearest-even (NaN stays NaN). */
function toBfloat16(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values)
  const words = new Uint32Array(f.buffer)
  const out = new Uint16Array(f.length)
  for (let i = 0; i < f.length; i++) {
    const w = words[i]!
    out[i] = Number.isNaN(f[i]) ? 0x7fc0 : (w + 0x7fff + ((w >>> 16) & 1)) >>> 16
  }
  return new Uint8Array(out.buffer)
}

export function writeValues(dtype: WireDtype, values: ArrayLike<number>, what: string): Uint8Array {
  switch (dtype) {
    case 'float32':
      return writeFloat32(values)
    case 'bfloat16':
      return toBfloat16(values)
    case 'int32':
      return writeInt32(values)
    case 'int64':
      return writeInt64(values, what)
  }
}

/**
 * Caps the memory that densifying CSR tensors may allocate for one request (a tiny CSR message can
 * declare a huge shape). Dense tensors need no charge: their size is bounded by the body itself.
 */
export class DenseBudget {
  private left: number
  constructor(readonly maxBytes: number) {
    this.left = maxBytes
  }
  charge(bytes: number, what: string): void {
    this.left -= bytes
    if (this.left < 0) {
      throw tuftError(
        'TUFT_PAYLOAD_TOO_LARGE',
        `${what}: densified tensors of this request exceed ${this.maxBytes} bytes`,
      )
    }
  }
}

function bad(message: string): Error {
  return tuftError('TUFT_BAD_REQUEST', message)
}

function densifyCsr(
  csr: NonNullable<PbTensor['sparse_csr']>,
  dtype: WireDtype,
  shape: number[],
  budget: DenseBudget,
  what: string,
): WireTensor {
  if (shape.length !== 2) throw bad(`${what}: sparse CSR tensors must be 2-D, got shape [${shape}]`)
  const [rows, cols] = shape as [number, number]
  const empty = new Uint8Array(0)
  const values = readValues(dtype, csr.values ?? empty, `${what}.values`)
  const crow = readInt64AsNumber(csr.crow_indices ?? empty, `${what}.crow_indices`)
  const col = readInt64AsNumber(csr.col_indices ?? empty, `${what}.col_indices`)
  const nnz = values.length
  if (crow.length !== rows + 1) {
    throw bad(`${what}: crow_indices has ${crow.length} entries, expected rows + 1 = ${rows + 1}`)
  }
  if (col.length !== nnz) throw bad(`${what}: col_indices has ${col.length} entries for ${nnz} values`)
  if (crow[0] !== 0 || crow[rows] !== nnz) {
    throw bad(`${what}: crow_indices must start at 0 and end at the value count ${nnz}`)
  }
  budget.charge(rows * cols * 4, what)
  const dense = isFloatDtype(dtype) ? new Float32Array(rows * cols) : new Int32Array(rows * cols)
  for (let r = 0; r < rows; r++) {
    const from = crow[r]!
    const to = crow[r + 1]!
    if (to < from) throw bad(`${what}: crow_indices decrease at row ${r}`)
    for (let j = from; j < to; j++) {
      const c = col[j]!
      if (c < 0 || c >= cols) throw bad(`${what}: column index ${c} out of range [0, ${cols})`)
      dense[r * cols + c] = values[j]!
    }
  }
  return { dtype, shape, data: dense }
}

/** Decodes one protobuf Tensor; an empty shape means 1-D. */
export function decodeTensor(t: PbTensor, budget: DenseBudget, what: string): WireTensor {
  const dtype = dtypeName(t.dtype, what)
  const shape = (t.shape ?? []).map((d) => int64ToNumber(d, `${what}.shape`))
  if (shape.some((d) => d < 0)) throw bad(`${what}: negative dimension in shape [${shape}]`)
  if (t.encoding === 'sparse_csr' && t.sparse_csr) return densifyCsr(t.sparse_csr, dtype, shape, budget, what)
  const data = readValues(dtype, t.dense ?? new Uint8Array(0), what)
  if (shape.length === 0) return { dtype, shape: [data.length], data }
  const expected = elementCount(shape)
  if (expected !== data.length) {
    throw bad(`${what}: shape [${shape}] needs ${expected} elements but ${data.length} were sent`)
  }
  return { dtype, shape, data }
}

/** Encodes a WireTensor densely, checking that its shape matches its data. */
export function encodeTensor(t: WireTensor, what: string): PbTensor {
  if (elementCount(t.shape) !== t.data.length) {
    throw bad(
      `${what}: shape [${t.shape}] needs ${elementCount(t.shape)} elements, data has ${t.data.length}`,
    )
  }
  return { dense: writeValues(t.dtype, t.data, what), dtype: dtypeCode(t.dtype), shape: t.shape }
}
