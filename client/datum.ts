// Building training data for forward/forward_backward (spec §5.1-5.3): model inputs, loss-function
// tensors typed per key as the SDK types plain lists, and the usual next-token datum from one sequence.

import type { Datum, ModelInputChunk } from '../core/wire/fwdbwd-request.js'
import type { WireTensor } from '../core/wire/tensors.js'

export type { Datum, ModelInputChunk, WireTensor }

/** A tensor given as a WireTensor, a typed array, a plain list, or a list of equal-length rows (2-D). */
export type TensorInput = WireTensor | ArrayLike<number> | ReadonlyArray<ArrayLike<number>>

/** How the SDK types plain lists by key (spec §5.2); any other key needs a typed array or a WireTensor. */
const INT_KEYS = new Set(['target_tokens'])
const FLOAT_KEYS = new Set(['weights', 'advantages', 'logprobs', 'clip_low_threshold', 'clip_high_threshold'])

function isWireTensor(v: TensorInput): v is WireTensor {
  return typeof v === 'object' && 'dtype' in v && 'shape' in v && 'data' in v
}

function isRows(
  v: ArrayLike<number> | ReadonlyArray<ArrayLike<number>>,
): v is ReadonlyArray<ArrayLike<number>> {
  return Array.isArray(v) && v.length > 0 && typeof v[0] === 'object'
}

/** Turns one loss_fn_inputs value into a WireTensor: int lists become int64, float lists float32. */
export function toTensor(key: string, value: TensorInput): WireTensor {
  if (isWireTensor(value)) return value
  let flat: ArrayLike<number> = value as ArrayLike<number>
  let shape = [value.length]
  if (isRows(value)) {
    const k = value[0]!.length
    if (value.some((row) => row.length !== k))
      throw new RangeError(`loss_fn_inputs['${key}']: rows differ in length`)
    flat = value.flatMap((row) => Array.from(row))
    shape = [value.length, k]
  }
  if (flat instanceof Int32Array) return { dtype: 'int64', shape, data: flat }
  if (flat instanceof Float32Array) return { dtype: 'float32', shape, data: flat }
  if (INT_KEYS.has(key)) return { dtype: 'int64', shape, data: Int32Array.from(flat) }
  if (FLOAT_KEYS.has(key)) return { dtype: 'float32', shape, data: Float32Array.from(flat) }
  throw new TypeError(
    `loss_fn_inputs['${key}']: a plain list has no known dtype for this key; pass an Int32Array, a Float32Array or a WireTensor`,
  )
}

export function modelInputFromTokens(tokens: ArrayLike<number>): ModelInputChunk[] {
  return [{ type: 'encoded_text', tokens: Int32Array.from(tokens) }]
}

/** Sequence length N of a model input: text tokens plus each image's expected token count. */
export function modelInputLength(chunks: readonly ModelInputChunk[]): number {
  let n = 0
  for (const c of chunks) {
    if (c.type === 'encoded_text') n += c.tokens.length
    else if (c.type === 'image') n += c.expectedTokens ?? 0
  }
  return n
}

export function makeDatum(
  modelInput: ArrayLike<number> | readonly ModelInputChunk[],
  lossFnInputs: Readonly<Record<string, TensorInput>>,
): Datum {
  const chunks =
    Array.isArray(modelInput) && typeof modelInput[0] === 'object'
      ? [...(modelInput as readonly ModelInputChunk[])]
      : modelInputFromTokens(modelInput as ArrayLike<number>)
  const tensors: Record<string, WireTensor> = {}
  for (const [key, value] of Object.entries(lossFnInputs)) tensors[key] = toTensor(key, value)
  return { chunks, lossFnInputs: tensors }
}

/**
 * The next-token datum of one sequence s (length L >= 2): model_input = s[0..L-2], target_tokens =
 * s[1..L-1]. `weights[i]` weighs token i of s (default 1); weights[0] is dropped since token 0 has
 * no prediction.
 */
export function datumFromTokens(tokens: ArrayLike<number>, weights?: ArrayLike<number>): Datum {
  const s = Array.from(tokens)
  if (s.length < 2) throw new RangeError(`datumFromTokens needs at least 2 tokens, got ${s.length}`)
  if (weights && weights.length !== s.length) {
    throw new RangeError(`datumFromTokens: ${weights.length} weights for ${s.length} tokens`)
  }
  const w = weights ? Float32Array.from(weights).subarray(1) : new Float32Array(s.length - 1).fill(1)
  return makeDatum(s.slice(0, -1), { target_tokens: Int32Array.from(s.slice(1)), weights: w })
}

const DTYPE_BYTES = { float32: 4, int64: 8, int32: 4, bfloat16: 2 } as const

/** The SDK's size estimate for chunking (spec §3.1): 4 bytes per input token plus tensor bytes. */
export function estimateDatumBytes(d: Datum): number {
  let bytes = 4 * modelInputLength(d.chunks)
  for (const t of Object.values(d.lossFnInputs)) bytes += t.data.length * DTYPE_BYTES[t.dtype]
  return bytes
}
