// What SDK 0.25 makes of the two protobuf results (spec §5.5, §5.8), decoded here from the spec's own
// tinker_public.proto with raw protobufjs, independently of the server's codecs in core/wire: a bug
// shared by our encoder and our decoder would otherwise go unnoticed. Throws where the SDK would raise.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import protobuf from 'protobufjs'

const root = protobuf.parse(
  readFileSync(new URL('../../core/wire/tinker_public.proto', import.meta.url), 'utf8'),
  { keepCase: true },
).root
const FwdBwdOutput = root.lookupType('tinker_public.ForwardBackwardOutput')
const SampleResponse = root.lookupType('tinker_public.SampleResponse')
const ForwardBackwardRequest = root.lookupType('tinker_public.ForwardBackwardRequest')

/** A decoded message as plain data; fields are read the way the SDK reads them, checked as they are used. */
// biome-ignore lint/suspicious/noExplicitAny: raw protobufjs objects, validated field by field below
type Pb = Record<string, any>

const toObject = (type: protobuf.Type, body: Uint8Array): Pb =>
  type.toObject(type.decode(body), { longs: Number, enums: Number, defaults: false })

const DTYPE_FLOAT32 = 1
const DTYPE_INT64 = 2
const DTYPE_INT32 = 3
const DTYPE_BFLOAT16 = 4

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength)
function readF32(b: Uint8Array): number[] {
  assert.equal(b.byteLength % 4, 0, 'float32 bytes are a multiple of 4')
  return Array.from({ length: b.byteLength / 4 }, (_, i) => view(b).getFloat32(i * 4, true))
}
function readI32(b: Uint8Array): number[] {
  assert.equal(b.byteLength % 4, 0, 'int32 bytes are a multiple of 4')
  return Array.from({ length: b.byteLength / 4 }, (_, i) => view(b).getInt32(i * 4, true))
}
function readI64(b: Uint8Array): number[] {
  assert.equal(b.byteLength % 8, 0, 'int64 bytes are a multiple of 8')
  return Array.from({ length: b.byteLength / 8 }, (_, i) => Number(view(b).getBigInt64(i * 8, true)))
}

export interface SdkTensor {
  dtype: 'float32' | 'int64'
  shape: number[]
  data: number[]
}

export interface SdkForwardBackwardOutput {
  loss_fn_output_type: string
  loss_fn_outputs: Record<string, SdkTensor>[]
  metrics: Record<string, number>
}

function decodeBatched(t: Pb, count: number, field: string): SdkTensor[] {
  const data: Uint8Array = t.data ?? new Uint8Array(0)
  const offsets = readI64(t.offsets ?? new Uint8Array(0))
  assert.equal(offsets.length, count + 1, `${field}: offsets hold num_datums + 1 entries`)
  assert.equal(offsets[0], 0, `${field}: offsets start at 0`)
  assert.equal(offsets[count], data.byteLength, `${field}: offsets end at len(data)`)
  const dtype: number = t.dtype ?? 0
  const trailing: number[] = t.trailing_shape ?? []
  const inner = trailing.reduce((a, b) => a * b, 1)
  return Array.from({ length: count }, (_, j) => {
    const slice = data.subarray(offsets[j]!, offsets[j + 1]!)
    let values: number[]
    if (dtype === DTYPE_FLOAT32) values = readF32(slice)
    else if (dtype === DTYPE_INT64) values = readI64(slice)
    else if (dtype === DTYPE_INT32) values = readI32(slice)
    else if (dtype === DTYPE_BFLOAT16)
      values = Array.from({ length: slice.byteLength / 2 }, (_, i) => {
        const f = new DataView(new ArrayBuffer(4))
        f.setUint16(2, view(slice).getUint16(i * 2, true))
        return f.getFloat32(0)
      })
    else throw new Error(`${field}: unsupported dtype ${dtype}`)
    assert.equal(values.length % inner, 0, `${field}: element count divisible by trailing_shape`)
    return {
      dtype: dtype === DTYPE_INT64 || dtype === DTYPE_INT32 ? 'int64' : 'float32',
      shape: [values.length / inner, ...trailing],
      data: values,
    }
  })
}

/** ForwardBackwardOutput as the SDK exposes it (records concatenated, shapes rebuilt). */
export function sdkDecodeForwardBackwardOutput(body: Uint8Array): SdkForwardBackwardOutput {
  const m = toObject(FwdBwdOutput, body)
  const records: Pb[] = m.loss_fn_outputs ?? []
  const outputs: Record<string, SdkTensor>[] = []
  let names: string | null = null
  for (const [r, rec] of records.entries()) {
    const fields: Record<string, Pb> = rec.fields ?? {}
    const keys = Object.keys(fields).sort().join(',')
    if (names !== null) assert.equal(keys, names, `record ${r} has the same field names as record 0`)
    names = keys
    const count: number = rec.num_datums ?? 0
    assert.ok(count > 0, `record ${r}: num_datums must be set`)
    const perField = Object.fromEntries(
      Object.entries(fields).map(([name, t]) => [name, decodeBatched(t, count, `record ${r}.${name}`)]),
    )
    for (let j = 0; j < count; j++) {
      outputs.push(Object.fromEntries(Object.entries(perField).map(([name, ts]) => [name, ts[j]!])))
    }
  }
  const type: string = m.loss_fn_output_type ?? ''
  return {
    loss_fn_output_type: type.slice(type.lastIndexOf(':') + 1),
    loss_fn_outputs: outputs,
    metrics: { ...((m.metrics as Record<string, number>) ?? {}) },
  }
}

export interface SdkSampleResponse {
  sequences: { stop_reason: 'stop' | 'length'; tokens: number[]; logprobs: number[] | null }[]
  prompt_logprobs: (number | null)[] | null
  topk_prompt_logprobs: ([number, number][] | null)[] | null
  prompt_cache_hit_tokens: number
}

const UNUSED_LOGPROB = -99999

/** SampleResponse as the SDK exposes it (NaN → null, unused top-K cells trimmed). */
export function sdkDecodeSampleResponse(body: Uint8Array): SdkSampleResponse {
  const m = toObject(SampleResponse, body)
  const sequences = ((m.sequences ?? []) as Pb[]).map((s, i) => {
    const reason: number = s.stop_reason ?? 0
    if (reason !== 0 && reason !== 1) throw new Error(`sequences[${i}]: unknown stop_reason ${reason}`)
    const logprobs = s.logprobs === undefined ? null : readF32(s.logprobs)
    return {
      stop_reason: reason === 0 ? ('stop' as const) : ('length' as const),
      tokens: readI32(s.tokens ?? new Uint8Array(0)),
      logprobs: logprobs && logprobs.length > 0 ? logprobs : null,
    }
  })
  const prompt =
    m.prompt_logprobs === undefined
      ? null
      : readF32(m.prompt_logprobs).map((v) => (Number.isNaN(v) ? null : v))
  let topk: ([number, number][] | null)[] | null = null
  const t = m.topk_prompt_logprobs as Pb | undefined
  if (t && (t.k ?? 0) > 0 && (t.prompt_length ?? 0) > 0) {
    const k: number = t.k
    const n: number = t.prompt_length
    const ids = readI32(t.token_ids ?? new Uint8Array(0))
    const lps = readF32(t.logprobs ?? new Uint8Array(0))
    assert.equal(ids.length, n * k, 'top-K token_ids hold prompt_length × k cells')
    assert.equal(lps.length, n * k, 'top-K logprobs hold prompt_length × k cells')
    topk = Array.from({ length: n }, (_, i) => {
      const row: [number, number][] = []
      for (let c = 0; c < k; c++) {
        const id = ids[i * k + c]!
        const lp = lps[i * k + c]!
        if (id === 0 && lp === UNUSED_LOGPROB) break
        row.push([id, lp])
      }
      return row.length === 0 ? null : row
    })
  }
  return {
    sequences,
    prompt_logprobs: prompt,
    topk_prompt_logprobs: topk,
    prompt_cache_hit_tokens: m.prompt_cache_hit_tokens ?? 0,
  }
}

export interface SdkDatum {
  tokens: number[]
  /** Per key: dtype code (1 float32, 2 int64), dense shape, values. */
  inputs: Record<string, { dtype: number; shape: number[]; values: number[] }>
  image?: { data: Uint8Array; format: string; expectedTokens: number }
}

/** Encodes a ForwardBackwardRequest the way the SDK does (dense tensors, int32 token bytes). */
export function sdkEncodeForwardBackwardRequest(req: {
  model_id: string
  seq_id: number
  loss_fn: string
  loss_fn_config?: Record<string, number>
  forward_only: boolean
  data: SdkDatum[]
}): Uint8Array {
  const bytes = (dtype: number, values: number[]) => {
    const size = dtype === DTYPE_INT64 ? 8 : 4
    const out = new DataView(new ArrayBuffer(values.length * size))
    for (const [i, v] of values.entries()) {
      if (dtype === DTYPE_INT64) out.setBigInt64(i * 8, BigInt(v), true)
      else out.setFloat32(i * 4, v, true)
    }
    return new Uint8Array(out.buffer)
  }
  const tokens = (ids: number[]) => {
    const out = new DataView(new ArrayBuffer(ids.length * 4))
    for (const [i, t] of ids.entries()) out.setInt32(i * 4, t, true)
    return new Uint8Array(out.buffer)
  }
  const message = ForwardBackwardRequest.fromObject({
    model_id: req.model_id,
    seq_id: req.seq_id,
    data: req.data.map((d) => ({
      model_input: [
        ...(d.image
          ? [
              {
                image: {
                  data: d.image.data,
                  format: d.image.format,
                  expected_tokens: d.image.expectedTokens,
                },
              },
            ]
          : []),
        { encoded_text: { tokens: tokens(d.tokens) } },
      ],
      loss_fn_inputs: Object.fromEntries(
        Object.entries(d.inputs).map(([k, t]) => [
          k,
          { dense: bytes(t.dtype, t.values), dtype: t.dtype, shape: t.shape },
        ]),
      ),
    })),
    loss_fn: req.loss_fn,
    loss_fn_config: req.loss_fn_config ?? {},
    forward_only: req.forward_only,
  })
  return ForwardBackwardRequest.encode(message).finish()
}

export const DTYPE = { FLOAT32: DTYPE_FLOAT32, INT64: DTYPE_INT64 } as const

/** A cross-entropy datum for the test model: input s[0..L-2], targets s[1..L-1], all weights 1. */
export function ceDatum(sequence: number[]): SdkDatum {
  const n = sequence.length - 1
  return {
    tokens: sequence.slice(0, -1),
    inputs: {
      target_tokens: { dtype: DTYPE_INT64, shape: [n], values: sequence.slice(1) },
      weights: { dtype: DTYPE_FLOAT32, shape: [n], values: new Array(n).fill(1) },
    },
  }
}

/** An RL datum (importance_sampling / ppo / cispo / dro inputs). */
export function rlDatum(sequence: number[], logprob: number, advantage: number): SdkDatum {
  const n = sequence.length - 1
  const f = (v: number) => ({ dtype: DTYPE_FLOAT32, shape: [n], values: new Array(n).fill(v) })
  return {
    tokens: sequence.slice(0, -1),
    inputs: {
      target_tokens: { dtype: DTYPE_INT64, shape: [n], values: sequence.slice(1) },
      logprobs: f(logprob),
      advantages: f(advantage),
    },
  }
}
