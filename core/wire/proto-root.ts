// The protobuf schema (tinker_public.proto, spec §5.12) loaded once with protobufjs, plus the raw
// message shapes protobufjs produces for it (snake_case fields: keepCase, spec §1.11.8).

import { readFileSync } from 'node:fs'
import protobuf from 'protobufjs'
import { tuftError } from '../errors.js'

const root = protobuf.parse(readFileSync(new URL('./tinker_public.proto', import.meta.url), 'utf8'), {
  keepCase: true,
}).root

export const pb = {
  ForwardBackwardRequest: root.lookupType('tinker_public.ForwardBackwardRequest'),
  ForwardBackwardOutput: root.lookupType('tinker_public.ForwardBackwardOutput'),
  SampleResponse: root.lookupType('tinker_public.SampleResponse'),
}

export const DTYPE = { UNSPECIFIED: 0, FLOAT32: 1, INT64: 2, INT32: 3, BFLOAT16: 4 } as const
export const STOP_REASON = { STOP: 0, LENGTH: 1 } as const

/** An int64 as protobufjs hands it over: a number, or a Long when the `long` package is present. */
export type PbInt64 = number | { low: number; high: number; unsigned: boolean }

export interface PbChunk {
  chunk?: 'encoded_text' | 'image' | 'dmel'
  encoded_text?: { tokens?: Uint8Array } | null
  image?: { data?: Uint8Array; format?: string; expected_tokens?: number } | null
  dmel?: { dmel?: Uint8Array } | null
}

export interface PbTensor {
  encoding?: 'dense' | 'sparse_csr'
  dense?: Uint8Array | null
  sparse_csr?: { values?: Uint8Array; crow_indices?: Uint8Array; col_indices?: Uint8Array } | null
  dtype?: number
  shape?: PbInt64[]
}

export interface PbDatum {
  model_input?: PbChunk[]
  loss_fn_inputs?: Record<string, PbTensor>
}

export interface PbForwardBackwardRequest {
  model_id?: string
  seq_id?: number
  data?: PbDatum[]
  loss_fn?: string
  loss_fn_config?: Record<string, number>
  forward_only?: boolean
}

export interface PbBatchedTensor {
  data?: Uint8Array
  offsets?: Uint8Array
  dtype?: number
  trailing_shape?: PbInt64[]
}

export interface PbArrayRecord {
  type_tag?: string
  fields?: Record<string, PbBatchedTensor>
  num_datums?: PbInt64
}

export interface PbForwardBackwardOutput {
  loss_fn_output_type?: string
  loss_fn_outputs?: PbArrayRecord[]
  metrics?: Record<string, number>
}

export interface PbSampledSequence {
  stop_reason?: number
  tokens?: Uint8Array
  logprobs?: Uint8Array | null
}

export interface PbSampleResponse {
  sequences?: PbSampledSequence[]
  prompt_logprobs?: Uint8Array | null
  topk_prompt_logprobs?: {
    token_ids?: Uint8Array
    logprobs?: Uint8Array
    k?: number
    prompt_length?: number
  } | null
  prompt_cache_hit_tokens?: number
}

export function int64ToNumber(v: PbInt64, what: string): number {
  const high = typeof v === 'number' ? 0 : v.unsigned ? v.high >>> 0 : v.high
  const n = typeof v === 'number' ? v : high * 2 ** 32 + (v.low >>> 0)
  if (!Number.isSafeInteger(n))
    throw tuftError('TUFT_BAD_REQUEST', `${what}: int64 value ${n} is out of range`)
  return n
}

/** Decodes `bytes` as message `type`, turning every protobufjs failure into a 400 that names the message. */
export function decodeMessage<T>(type: protobuf.Type, bytes: Uint8Array): T {
  try {
    return type.decode(bytes) as unknown as T
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw tuftError('TUFT_BAD_REQUEST', `Malformed ${type.name} protobuf: ${reason}`)
  }
}

/** Encodes a plain object shaped like the message (unset fields omitted, as proto3 requires). */
export function encodeMessage(type: protobuf.Type, message: object): Buffer {
  const bytes = type.encode(message).finish()
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
