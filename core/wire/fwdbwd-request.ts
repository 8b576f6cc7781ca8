// ForwardBackwardRequest codec (spec §3.12, §5.1-5.3): the protobuf body of POST /forward_backward.
// The server decodes it (zstd when compressed, size-capped); the TS client encodes it.

import { tuftError } from '../errors.js'
import { readInt32, writeInt32 } from './packed.js'
import {
  decodeMessage,
  encodeMessage,
  type PbChunk,
  type PbDatum,
  type PbForwardBackwardRequest,
  pb,
} from './proto-root.js'
import { DenseBudget, decodeTensor, encodeTensor, type WireTensor } from './tensors.js'
import { decompressZstd } from './zstd.js'

/** One model-input chunk. Only text is trainable here; image/dmel are kept so the server can name them. */
export type ModelInputChunk =
  | { type: 'encoded_text'; tokens: Int32Array }
  | { type: 'image'; data: Uint8Array; format: string; expectedTokens?: number }
  | { type: 'dmel'; data: Uint8Array }

export interface Datum {
  chunks: ModelInputChunk[]
  lossFnInputs: Record<string, WireTensor>
}

export interface ForwardBackwardRequest {
  modelId: string
  seqId: number
  /** Not checked here: the server validates it against the losses it implements. */
  lossFn: string
  lossFnConfig: Record<string, number>
  forwardOnly: boolean
  data: Datum[]
}

function bad(message: string): Error {
  return tuftError('TUFT_BAD_REQUEST', message)
}

function decodeChunk(c: PbChunk, what: string): ModelInputChunk {
  switch (c.chunk) {
    case 'encoded_text':
      return { type: 'encoded_text', tokens: readInt32(c.encoded_text?.tokens ?? new Uint8Array(0), what) }
    case 'image': {
      const image = c.image ?? {}
      const chunk: ModelInputChunk = {
        type: 'image',
        data: new Uint8Array(image.data ?? new Uint8Array(0)),
        format: image.format ?? '',
      }
      if (image.expected_tokens !== undefined && image.expected_tokens !== null) {
        chunk.expectedTokens = image.expected_tokens
      }
      return chunk
    }
    case 'dmel':
      return { type: 'dmel', data: new Uint8Array(c.dmel?.dmel ?? new Uint8Array(0)) }
    default:
      throw bad(`${what}: empty chunk (none of encoded_text, image, dmel is set)`)
  }
}

function decodeDatum(d: PbDatum, index: number, budget: DenseBudget): Datum {
  const chunks = (d.model_input ?? []).map((c, j) => decodeChunk(c, `data[${index}].model_input[${j}]`))
  const lossFnInputs: Record<string, WireTensor> = {}
  for (const [key, tensor] of Object.entries(d.loss_fn_inputs ?? {})) {
    lossFnInputs[key] = decodeTensor(tensor, budget, `data[${index}].loss_fn_inputs['${key}']`)
  }
  return { chunks, lossFnInputs }
}

/** A decoded forward_backward body with the (decompressed) protobuf bytes it was decoded from. */
export interface ForwardBackwardBody {
  request: ForwardBackwardRequest
  bytes: Uint8Array
}

/**
 * Decodes a forward_backward body. `contentEncoding` 'zstd' decompresses first (other encodings: 415).
 * Bodies or decompressed bodies above `maxBytes` give 413; anything malformed gives 400.
 */
export function decodeForwardBackwardRequest(
  body: Uint8Array,
  contentEncoding: string | undefined,
  maxBytes: number,
): ForwardBackwardRequest {
  return readForwardBackwardBody(body, contentEncoding, maxBytes).request
}

/** decodeForwardBackwardRequest, keeping the protobuf bytes (the durable replay log stores them as they came). */
export function readForwardBackwardBody(
  body: Uint8Array,
  contentEncoding: string | undefined,
  maxBytes: number,
): ForwardBackwardBody {
  const encoding = (contentEncoding ?? '').trim().toLowerCase()
  let bytes: Uint8Array
  if (encoding === 'zstd') bytes = decompressZstd(body, maxBytes)
  else if (encoding === '' || encoding === 'identity') bytes = body
  else throw tuftError('TUFT_UNSUPPORTED_MEDIA_TYPE', `Unsupported Content-Encoding '${contentEncoding}'`)
  if (bytes.byteLength > maxBytes) {
    throw tuftError('TUFT_PAYLOAD_TOO_LARGE', `forward_backward body exceeds ${maxBytes} bytes`)
  }
  const m = decodeMessage<PbForwardBackwardRequest>(pb.ForwardBackwardRequest, bytes)
  if (!m.model_id) throw bad('forward_backward request has no model_id')
  const seqId = m.seq_id ?? 0
  if (seqId < 1) throw bad(`forward_backward seq_id must be >= 1, got ${seqId}`)
  if (!m.loss_fn) throw bad('forward_backward request has no loss_fn')
  const budget = new DenseBudget(maxBytes)
  const request: ForwardBackwardRequest = {
    modelId: m.model_id,
    seqId,
    lossFn: m.loss_fn,
    lossFnConfig: { ...(m.loss_fn_config ?? {}) },
    forwardOnly: m.forward_only ?? false,
    data: (m.data ?? []).map((d, i) => decodeDatum(d, i, budget)),
  }
  return { request, bytes }
}

function encodeChunk(c: ModelInputChunk): PbChunk {
  switch (c.type) {
    case 'encoded_text':
      return { encoded_text: { tokens: writeInt32(c.tokens) } }
    case 'image':
      return {
        image: {
          data: c.data,
          format: c.format,
          ...(c.expectedTokens === undefined ? {} : { expected_tokens: c.expectedTokens }),
        },
      }
    case 'dmel':
      return { dmel: { dmel: c.data } }
  }
}

/** Encodes a forward_backward body (dense tensors), as the TS client sends it. */
export function encodeForwardBackwardRequest(req: ForwardBackwardRequest): Buffer {
  const message: PbForwardBackwardRequest = {
    model_id: req.modelId,
    seq_id: req.seqId,
    data: req.data.map((d, i) => {
      const inputs: Record<string, ReturnType<typeof encodeTensor>> = {}
      for (const [key, t] of Object.entries(d.lossFnInputs)) {
        inputs[key] = encodeTensor(t, `data[${i}].loss_fn_inputs['${key}']`)
      }
      return { model_input: d.chunks.map(encodeChunk), loss_fn_inputs: inputs }
    }),
    loss_fn: req.lossFn,
    loss_fn_config: req.lossFnConfig,
    forward_only: req.forwardOnly,
  }
  return encodeMessage(pb.ForwardBackwardRequest, message)
}
