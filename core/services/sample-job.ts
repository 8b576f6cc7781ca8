// Sample requests in engine terms (spec §3.19, §5.7): the wire's prompt chunks, stop list and sampling
// parameters become a SampleJob, checked against the model's vocabulary and context.

import { randomBytes } from 'node:crypto'
import type { SampleJob } from '../engine.js'
import { tuftError } from '../errors.js'
import type { SampleRequest } from '../wire/schemas.js'
import { checkTokenIds } from './train-items.js'

/** Generated tokens when max_tokens is absent: up to the context limit, at most this many. */
export const DEFAULT_MAX_TOKENS = 1024

/** The job of a sample request (no adapter yet: the sampler's adapter is resolved apart). */
export function toSampleJob(
  body: SampleRequest,
  limits: { vocabSize: number; maxContext: number },
): SampleJob {
  const tokens: number[] = []
  for (const [i, chunk] of body.prompt.chunks.entries()) {
    if (chunk.type !== undefined && chunk.type !== 'encoded_text') {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `prompt.chunks[${i}]: ${chunk.type} chunks are not supported; this server serves text-only models`,
      )
    }
    tokens.push(...(chunk as { tokens: number[] }).tokens)
  }
  if (tokens.length === 0) throw tuftError('TUFT_BAD_REQUEST', 'prompt is empty')
  checkTokenIds(tokens, 'prompt', limits.vocabSize)
  const context = limits.maxContext
  if (tokens.length >= context) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `prompt of ${tokens.length} tokens leaves no room in the context of ${context}`,
    )
  }
  const p = body.sampling_params
  const stop = p.stop ?? []
  const stopList = typeof stop === 'string' ? [stop] : stop
  const stopTokens = stopList.filter((s): s is number => typeof s === 'number')
  checkTokenIds(stopTokens, 'sampling_params.stop', limits.vocabSize)
  const maxTokens = p.max_tokens ?? Math.min(DEFAULT_MAX_TOKENS, context - tokens.length)
  return {
    adapter: null,
    prompt: Int32Array.from(tokens),
    numSamples: body.num_samples,
    maxTokens,
    temperature: p.temperature,
    topK: p.top_k,
    topP: p.top_p,
    seed: p.seed === undefined || p.seed === null ? randomBytes(8).readBigUInt64LE() : BigInt(p.seed),
    stopTokens,
    stopStrings: stopList.filter((s): s is string => typeof s === 'string'),
    promptLogprobs: body.prompt_logprobs,
    topkPromptLogprobs: body.topk_prompt_logprobs,
  }
}
