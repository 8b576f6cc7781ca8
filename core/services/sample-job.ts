// Sample requests in engine terms (spec §3.19, §5.7): the wire's prompt chunks, stop list and sampling
// parameters become a SampleJob, checked against the model's vocabulary and context. The OpenAI-compatible
// API builds its jobs with the same checks (buildSampleJob).

import { randomBytes } from 'node:crypto'
import type { SampleJob } from '../engine.js'
import { tuftError } from '../errors.js'
import type { SampleRequest } from '../wire/schemas.js'
import { checkTokenIds } from './train-items.js'

/** Generated tokens when max_tokens is absent: up to the context limit, at most this many. */
export const DEFAULT_MAX_TOKENS = 1024

export interface SampleLimits {
  vocabSize: number
  maxContext: number
}

/** A sample request in plain terms, before its checks. */
export interface SampleSpec {
  prompt: number[]
  numSamples: number
  /** null: DEFAULT_MAX_TOKENS, or less when the context has less room. */
  maxTokens: number | null
  temperature: number
  topK: number
  topP: number
  /** null: a random seed. */
  seed: number | bigint | null
  stopStrings: string[]
  stopTokens: number[]
  promptLogprobs: boolean
  topkPromptLogprobs: number
}

/** The job of a sample request (no adapter yet: the sampler's adapter is resolved apart). */
export function toSampleJob(body: SampleRequest, limits: SampleLimits): SampleJob {
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
  const p = body.sampling_params
  const stop = p.stop ?? []
  const stopList = typeof stop === 'string' ? [stop] : stop
  return buildSampleJob(
    {
      prompt: tokens,
      numSamples: body.num_samples,
      maxTokens: p.max_tokens ?? null,
      temperature: p.temperature,
      topK: p.top_k,
      topP: p.top_p,
      seed: p.seed ?? null,
      stopStrings: stopList.filter((s): s is string => typeof s === 'string'),
      stopTokens: stopList.filter((s): s is number => typeof s === 'number'),
      promptLogprobs: body.prompt_logprobs,
      topkPromptLogprobs: body.topk_prompt_logprobs,
    },
    limits,
  )
}

/** Checks a sample request against the model and makes its job. */
export function buildSampleJob(spec: SampleSpec, limits: SampleLimits): SampleJob {
  const tokens = spec.prompt
  if (tokens.length === 0) throw tuftError('TUFT_BAD_REQUEST', 'prompt is empty')
  checkTokenIds(tokens, 'prompt', limits.vocabSize)
  const context = limits.maxContext
  if (tokens.length >= context) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `prompt of ${tokens.length} tokens leaves no room in the context of ${context}`,
    )
  }
  checkTokenIds(spec.stopTokens, 'sampling_params.stop', limits.vocabSize)
  return {
    adapter: null,
    prompt: Int32Array.from(tokens),
    numSamples: spec.numSamples,
    maxTokens: spec.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, context - tokens.length),
    temperature: spec.temperature,
    topK: spec.topK,
    topP: spec.topP,
    seed: spec.seed === null ? randomBytes(8).readBigUInt64LE() : BigInt(spec.seed),
    stopTokens: spec.stopTokens,
    stopStrings: spec.stopStrings,
    promptLogprobs: spec.promptLogprobs,
    topkPromptLogprobs: spec.topkPromptLogprobs,
  }
}
