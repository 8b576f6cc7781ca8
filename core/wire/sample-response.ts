// SampleResponse codec (spec §5.8): the server encodes engine sample results; the TS client decodes them
// into what the SDK shows users (NaN first prompt logprob -> null, unused top-K cells trimmed).

import { tuftError } from '../errors.js'
import { readFloat32, readInt32, writeFloat32, writeInt32 } from './packed.js'
import {
  decodeMessage,
  encodeMessage,
  type PbSampledSequence,
  type PbSampleResponse,
  pb,
  STOP_REASON,
} from './proto-root.js'

export type StopReason = 'stop' | 'length'

/** Structurally compatible with core/engine.ts SampleResult. */
export interface SampleResponseInput {
  sequences: ReadonlyArray<{
    tokens: ArrayLike<number>
    logprobs?: ArrayLike<number>
    stopReason: StopReason
  }>
  /** One per prompt token; index 0 is sent as NaN whatever it holds (it has no predecessor). */
  promptLogprobs?: ArrayLike<number>
  /** Dense [promptLength, k] matrices, best first; unused cells (0, -99999). */
  topkPromptLogprobs?: {
    tokenIds: ArrayLike<number>
    logprobs: ArrayLike<number>
    k: number
    promptLength: number
  }
  promptCacheHitTokens?: number
}

export interface SampledSequenceView {
  tokens: number[]
  /** null when the server sent none. */
  logprobs: number[] | null
  stopReason: StopReason
  /** The asample future's id for this sequence (SDK ≥ 0.26 `sequence_id`); the response bytes carry none. */
  sequenceId?: string
}

export interface SampleResponseView {
  sequences: SampledSequenceView[]
  /** null when not requested; entry 0 is null. */
  promptLogprobs: Array<number | null> | null
  /** Per prompt position: (token id, logprob) pairs best first, or null where there is none. */
  topkPromptLogprobs: Array<Array<[number, number]> | null> | null
  promptCacheHitTokens: number
}

/** Marks a top-K cell with no candidate (fewer than K tokens available, or position 0). */
export const UNUSED_TOPK_LOGPROB = -99999

const STOP_CODES: Record<StopReason, number> = { stop: STOP_REASON.STOP, length: STOP_REASON.LENGTH }

export function encodeSampleResponse(result: SampleResponseInput): Buffer {
  const message: PbSampleResponse = {
    sequences: result.sequences.map((s, i) => {
      const code = STOP_CODES[s.stopReason]
      if (code === undefined)
        throw tuftError('TUFT_INTERNAL', `sequences[${i}]: unknown stop reason ${s.stopReason}`)
      const seq: PbSampledSequence = { stop_reason: code, tokens: writeInt32(s.tokens) }
      if (s.logprobs) {
        if (s.logprobs.length !== s.tokens.length) {
          throw tuftError(
            'TUFT_INTERNAL',
            `sequences[${i}]: ${s.logprobs.length} logprobs for ${s.tokens.length} tokens`,
          )
        }
        seq.logprobs = writeFloat32(s.logprobs)
      }
      return seq
    }),
    prompt_cache_hit_tokens: result.promptCacheHitTokens ?? 0,
  }
  if (result.promptLogprobs) {
    const values = Float32Array.from(result.promptLogprobs)
    if (values.length) values[0] = Number.NaN
    message.prompt_logprobs = writeFloat32(values)
  }
  const topk = result.topkPromptLogprobs
  if (topk) {
    const cells = topk.k * topk.promptLength
    if (topk.tokenIds.length !== cells || topk.logprobs.length !== cells) {
      throw tuftError(
        'TUFT_INTERNAL',
        `topk_prompt_logprobs: expected ${cells} cells of [${topk.promptLength}, ${topk.k}]`,
      )
    }
    message.topk_prompt_logprobs = {
      token_ids: writeInt32(topk.tokenIds),
      logprobs: writeFloat32(topk.logprobs),
      k: topk.k,
      prompt_length: topk.promptLength,
    }
  }
  return encodeMessage(pb.SampleResponse, message)
}

function decodeTopk(
  t: NonNullable<PbSampleResponse['topk_prompt_logprobs']>,
): SampleResponseView['topkPromptLogprobs'] {
  const k = t.k ?? 0
  const n = t.prompt_length ?? 0
  if (k === 0 || n === 0) return null
  const empty = new Uint8Array(0)
  const ids = readInt32(t.token_ids ?? empty, 'topk_prompt_logprobs.token_ids')
  const lps = readFloat32(t.logprobs ?? empty, 'topk_prompt_logprobs.logprobs')
  if (ids.length !== n * k || lps.length !== n * k) {
    throw tuftError('TUFT_BAD_REQUEST', `topk_prompt_logprobs: expected ${n * k} cells of [${n}, ${k}]`)
  }
  const unused = (cell: number) => ids[cell] === 0 && lps[cell] === UNUSED_TOPK_LOGPROB
  const rows: Array<Array<[number, number]> | null> = []
  for (let i = 0; i < n; i++) {
    let used = k
    while (used > 0 && unused(i * k + used - 1)) used--
    if (unused(i * k)) {
      rows.push(null)
      continue
    }
    const row: Array<[number, number]> = []
    for (let j = 0; j < used; j++) row.push([ids[i * k + j]!, lps[i * k + j]!])
    rows.push(row)
  }
  return rows
}

export function decodeSampleResponse(body: Uint8Array): SampleResponseView {
  const m = decodeMessage<PbSampleResponse>(pb.SampleResponse, body)
  const sequences = (m.sequences ?? []).map((s, i): SampledSequenceView => {
    const code = s.stop_reason ?? STOP_REASON.STOP
    if (code !== STOP_REASON.STOP && code !== STOP_REASON.LENGTH) {
      throw tuftError('TUFT_BAD_REQUEST', `sequences[${i}]: unknown stop reason ${code}`)
    }
    const logprobs = s.logprobs?.byteLength
      ? Array.from(readFloat32(s.logprobs, `sequences[${i}].logprobs`))
      : null
    return {
      tokens: Array.from(readInt32(s.tokens ?? new Uint8Array(0), `sequences[${i}].tokens`)),
      logprobs,
      stopReason: code === STOP_REASON.STOP ? 'stop' : 'length',
    }
  })
  const prompt = m.prompt_logprobs
  return {
    sequences,
    promptLogprobs: prompt
      ? Array.from(readFloat32(prompt, 'prompt_logprobs'), (v) => (Number.isNaN(v) ? null : v))
      : null,
    topkPromptLogprobs: m.topk_prompt_logprobs ? decodeTopk(m.topk_prompt_logprobs) : null,
    promptCacheHitTokens: m.prompt_cache_hit_tokens ?? 0,
  }
}
