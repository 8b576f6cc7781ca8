// Stored future results for tensor-valued operations (spec §4.4, §5.5, §5.8): kept in the Store as
// JSON with base64-packed arrays, and turned into protobuf (when the poll accepts it) or the legacy
// JSON shapes of Appendix A (for older clients) when retrieved.

import type { SampleResult, StopReason } from '../engine.js'
import type { Json } from '../persistence.js'
import { encodeForwardBackwardOutput, encodeSampleResponse, UNUSED_TOPK_LOGPROB } from '../wire/proto.js'

type Packed = string

export type StoredFwdBwd = {
  tuft_result: 'forward_backward'
  outputs: { logprobs: Packed; shape: number[] }[]
  metrics: Record<string, number>
}

export type StoredSample = {
  tuft_result: 'sample'
  sequences: { tokens: Packed; logprobs: Packed; stop_reason: StopReason }[]
  prompt_logprobs: Packed | null
  topk: { token_ids: Packed; logprobs: Packed; k: number; prompt_length: number } | null
}

const packF32 = (a: ArrayLike<number>): Packed => Buffer.from(Float32Array.from(a).buffer).toString('base64')
const packI32 = (a: ArrayLike<number>): Packed => Buffer.from(Int32Array.from(a).buffer).toString('base64')
const unpackF32 = (p: Packed): Float32Array =>
  new Float32Array(new Uint8Array(Buffer.from(p, 'base64')).buffer)
const unpackI32 = (p: Packed): Int32Array => new Int32Array(new Uint8Array(Buffer.from(p, 'base64')).buffer)

export function storeFwdBwd(
  outputs: { logprobs: Float32Array; shape: number[] }[],
  metrics: Record<string, number>,
): StoredFwdBwd {
  return {
    tuft_result: 'forward_backward',
    outputs: outputs.map((o) => ({ logprobs: packF32(o.logprobs), shape: o.shape })),
    metrics,
  }
}

export function storeSample(r: SampleResult): StoredSample {
  return {
    tuft_result: 'sample',
    sequences: r.sequences.map((s) => ({
      tokens: packI32(s.tokens),
      logprobs: packF32(s.logprobs),
      stop_reason: s.stopReason,
    })),
    prompt_logprobs: r.promptLogprobs ? packF32(r.promptLogprobs) : null,
    topk: r.topkPromptLogprobs
      ? {
          token_ids: packI32(r.topkPromptLogprobs.tokenIds),
          logprobs: packF32(r.topkPromptLogprobs.logprobs),
          k: r.topkPromptLogprobs.k,
          prompt_length: r.topkPromptLogprobs.promptLength,
        }
      : null,
  }
}

function isTensorResult(result: Json): result is StoredFwdBwd | StoredSample {
  return typeof result === 'object' && result !== null && !Array.isArray(result) && 'tuft_result' in result
}

export type EncodedResult =
  | { contentType: 'application/x-protobuf'; body: Buffer }
  | { contentType: 'application/json'; body: Json }

/**
 * The Appendix A JSON form of the top-K prompt matrix: per prompt position its (token, logprob) pairs
 * best first, unused cells dropped, and null for a row with none (position 0).
 */
function topkRows(ids: Int32Array, lps: Float32Array, k: number, n: number): Json {
  return Array.from({ length: n }, (_, i) => {
    const row: [number, number][] = []
    for (let c = i * k; c < (i + 1) * k; c++) {
      if (ids[c] === 0 && lps[c] === UNUSED_TOPK_LOGPROB) break
      row.push([ids[c]!, lps[c]!])
    }
    return row.length === 0 ? null : row
  })
}

/** The wire form of a finished future's result, honouring the poll's Accept header. */
export function encodeResult(result: Json, acceptsProtobuf: boolean): EncodedResult {
  if (!isTensorResult(result)) return { contentType: 'application/json', body: result }
  if (result.tuft_result === 'forward_backward') {
    const outputs = result.outputs.map((o) => ({
      logprobs: { dtype: 'float32' as const, shape: o.shape, data: unpackF32(o.logprobs) },
    }))
    if (acceptsProtobuf) {
      const body = encodeForwardBackwardOutput({
        lossFnOutputType: 'ArrayRecord',
        outputs,
        metrics: result.metrics,
      })
      return { contentType: 'application/x-protobuf', body }
    }
    return {
      contentType: 'application/json',
      body: {
        loss_fn_output_type: 'ArrayRecord',
        loss_fn_outputs: outputs.map((o) => ({
          logprobs: { data: Array.from(o.logprobs.data), dtype: 'float32', shape: o.logprobs.shape },
        })),
        metrics: result.metrics,
      },
    }
  }
  const sequences = result.sequences.map((s) => ({
    tokens: unpackI32(s.tokens),
    logprobs: unpackF32(s.logprobs),
    stopReason: s.stop_reason,
  }))
  const promptLogprobs = result.prompt_logprobs === null ? undefined : unpackF32(result.prompt_logprobs)
  const topk = result.topk
  if (acceptsProtobuf) {
    const body = encodeSampleResponse({
      sequences,
      ...(promptLogprobs ? { promptLogprobs } : {}),
      ...(topk
        ? {
            topkPromptLogprobs: {
              tokenIds: unpackI32(topk.token_ids),
              logprobs: unpackF32(topk.logprobs),
              k: topk.k,
              promptLength: topk.prompt_length,
            },
          }
        : {}),
    })
    return { contentType: 'application/x-protobuf', body }
  }
  return {
    contentType: 'application/json',
    body: {
      type: 'sample',
      sequences: sequences.map((s) => ({
        stop_reason: s.stopReason,
        tokens: Array.from(s.tokens),
        logprobs: Array.from(s.logprobs),
      })),
      prompt_logprobs: promptLogprobs
        ? Array.from(promptLogprobs, (v, i) => (i === 0 || Number.isNaN(v) ? null : v))
        : null,
      topk_prompt_logprobs: topk
        ? topkRows(unpackI32(topk.token_ids), unpackF32(topk.logprobs), topk.k, topk.prompt_length)
        : null,
      prompt_cache_hit_tokens: 0,
    },
  }
}
