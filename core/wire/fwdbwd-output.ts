// ForwardBackwardOutput codec (spec §5.5): per-datum output tensors batched into ArrayRecords, a new
// record whenever a field's dtype or trailing shape changes; metrics as map<string,double>.

import { tuftError } from '../errors.js'
import { readInt64AsNumber, writeInt64 } from './packed.js'
import {
  DTYPE,
  decodeMessage,
  encodeMessage,
  int64ToNumber,
  type PbArrayRecord,
  type PbBatchedTensor,
  type PbForwardBackwardOutput,
  pb,
} from './proto-root.js'
import { dtypeCode, dtypeName, elementCount, readValues, type WireTensor, writeValues } from './tensors.js'

/** One output tensor of one datum; the SDK knows only these two dtypes. */
export interface OutputTensor {
  dtype: 'float32' | 'int64'
  shape: readonly number[]
  data: ArrayLike<number>
}

export interface ForwardBackwardOutputInput {
  lossFnOutputType: string
  /** One entry per datum, in input order; every entry has the same field names. */
  outputs: ReadonlyArray<Readonly<Record<string, OutputTensor>>>
  metrics: Readonly<Record<string, number>>
}

export interface ForwardBackwardOutput {
  lossFnOutputType: string
  outputs: Array<Record<string, WireTensor>>
  metrics: Record<string, number>
}

const RECORD_TAG = 'ArrayRecord'

function signature(output: Readonly<Record<string, OutputTensor>>, keys: string[]): string {
  return keys.map((k) => `${output[k]!.dtype}[${output[k]!.shape.slice(1).join(',')}]`).join(';')
}

function batch(group: ReadonlyArray<Readonly<Record<string, OutputTensor>>>, keys: string[], first: number) {
  const fields: Record<string, PbBatchedTensor> = {}
  for (const key of keys) {
    const parts: Uint8Array[] = []
    const offsets = [0]
    group.forEach((output, j) => {
      const t = output[key]!
      const what = `outputs[${first + j}]['${key}']`
      if (elementCount(t.shape) !== t.data.length) {
        throw tuftError(
          'TUFT_INTERNAL',
          `${what}: shape [${t.shape}] does not match ${t.data.length} elements`,
        )
      }
      const bytes = writeValues(t.dtype, t.data, what)
      parts.push(bytes)
      offsets.push(offsets[offsets.length - 1]! + bytes.byteLength)
    })
    const data = Buffer.concat(parts)
    const t0 = group[0]![key]!
    fields[key] = {
      data,
      offsets: writeInt64(offsets, 'offsets'),
      dtype: dtypeCode(t0.dtype),
      trailing_shape: t0.shape.slice(1),
    }
  }
  return { type_tag: RECORD_TAG, fields, num_datums: group.length } satisfies PbArrayRecord
}

/** Encodes a forward/forward_backward result as the protobuf the SDK requires. */
export function encodeForwardBackwardOutput(result: ForwardBackwardOutputInput): Buffer {
  const records: PbArrayRecord[] = []
  const outputs = result.outputs
  const keys = outputs.length ? Object.keys(outputs[0]!) : []
  const keyId = keys.toSorted().join(',')
  let start = 0
  for (let i = 0; i <= outputs.length; i++) {
    if (i < outputs.length && Object.keys(outputs[i]!).toSorted().join(',') !== keyId) {
      throw tuftError(
        'TUFT_INTERNAL',
        `outputs[${i}] has fields [${Object.keys(outputs[i]!)}], expected [${keys}]`,
      )
    }
    const boundary =
      i === outputs.length || (i > start && signature(outputs[i]!, keys) !== signature(outputs[start]!, keys))
    if (boundary && i > start) {
      records.push(batch(outputs.slice(start, i), keys, start))
      start = i
    }
  }
  const message: PbForwardBackwardOutput = {
    loss_fn_output_type: result.lossFnOutputType,
    loss_fn_outputs: records,
    metrics: { ...result.metrics },
  }
  return encodeMessage(pb.ForwardBackwardOutput, message)
}

function unbatch(field: PbBatchedTensor, count: number, what: string): WireTensor[] {
  const empty = new Uint8Array(0)
  const code = field.dtype ?? DTYPE.UNSPECIFIED
  const wireDtype = dtypeName(code, what)
  // The SDK widens bfloat16 to float32 and int32 to int64; so do we.
  const dtype = wireDtype === 'float32' || wireDtype === 'bfloat16' ? 'float32' : 'int64'
  const data = field.data ?? empty
  const offsets = readInt64AsNumber(field.offsets ?? empty, `${what}.offsets`)
  // `length`: an unset bytes field decodes as an empty Array (core/wire/packed.ts).
  if (offsets.length !== count + 1 || offsets[0] !== 0 || offsets[count] !== data.length) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `${what}: offsets do not describe ${count} datums over ${data.length} bytes`,
    )
  }
  const trailing = (field.trailing_shape ?? []).map((d) => int64ToNumber(d, `${what}.trailing_shape`))
  const inner = elementCount(trailing)
  const tensors: WireTensor[] = []
  for (let j = 0; j < count; j++) {
    if (offsets[j + 1]! < offsets[j]!)
      throw tuftError('TUFT_BAD_REQUEST', `${what}: offsets decrease at ${j}`)
    const values = readValues(wireDtype, data.subarray(offsets[j]!, offsets[j + 1]!), `${what}[${j}]`)
    if (inner === 0 ? values.length !== 0 : values.length % inner !== 0) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `${what}[${j}]: ${values.length} elements do not fit [*, ${trailing}]`,
      )
    }
    tensors.push({ dtype, shape: [inner === 0 ? 0 : values.length / inner, ...trailing], data: values })
  }
  return tensors
}

/** Decodes a ForwardBackwardOutput (the TS client's side of §5.5), concatenating records in order. */
export function decodeForwardBackwardOutput(body: Uint8Array): ForwardBackwardOutput {
  const m = decodeMessage<PbForwardBackwardOutput>(pb.ForwardBackwardOutput, body)
  const outputs: Array<Record<string, WireTensor>> = []
  ;(m.loss_fn_outputs ?? []).forEach((record, r) => {
    const fields = Object.entries(record.fields ?? {})
    let count = int64ToNumber(record.num_datums ?? 0, `loss_fn_outputs[${r}].num_datums`)
    if (count === 0 && fields.length) {
      count = readInt64AsNumber(fields[0]![1].offsets ?? new Uint8Array(0), 'offsets').length - 1
    }
    const rows: Array<Record<string, WireTensor>> = Array.from({ length: Math.max(count, 0) }, () => ({}))
    for (const [key, field] of fields) {
      unbatch(field, rows.length, `loss_fn_outputs[${r}].fields['${key}']`).forEach((t, j) => {
        rows[j]![key] = t
      })
    }
    outputs.push(...rows)
  })
  const lossFnOutputType = m.loss_fn_output_type ?? ''
  return {
    // The SDK keeps only the text after the last ':' of the label.
    lossFnOutputType: lossFnOutputType.slice(lossFnOutputType.lastIndexOf(':') + 1),
    outputs,
    metrics: { ...(m.metrics ?? {}) },
  }
}
