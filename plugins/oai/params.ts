// Request fields shared by /completions and /chat/completions (OpenAI's, plus the vLLM extensions this
// server implements), their defaults as vLLM applies them, and a clear 400 for the fields it does not
// implement, so a request never gets a silently different answer.

import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { tuftError } from '../../core/errors.js'
import type { GenerationOptions } from './generate.js'

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])

export const SamplingFields = {
  model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  n: Type.Optional(Type.Integer({ minimum: 1, maximum: 128 })),
  temperature: Type.Optional(Nullable(Type.Number({ minimum: 0 }))),
  top_p: Type.Optional(Nullable(Type.Number({ exclusiveMinimum: 0, maximum: 1 }))),
  top_k: Type.Optional(Nullable(Type.Integer({ minimum: -1 }))),
  seed: Type.Optional(Nullable(Type.Integer())),
  stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String()), Type.Null()])),
  stop_token_ids: Type.Optional(Type.Union([Type.Array(Type.Integer({ minimum: 0 })), Type.Null()])),
  ignore_eos: Type.Optional(Type.Boolean()),
  include_stop_str_in_output: Type.Optional(Type.Boolean()),
  skip_special_tokens: Type.Optional(Type.Boolean()),
  prompt_logprobs: Type.Optional(Nullable(Type.Integer({ minimum: -1 }))),
  return_token_ids: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(
    Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }), Type.Null()]),
  ),
}

const SamplingBody = Type.Object(SamplingFields)
export type SamplingBody = Static<typeof SamplingBody>

/** Fields this server does not implement, with the value that means "off" (anything else is a 400). */
const UNSUPPORTED: Record<string, unknown> = {
  suffix: null,
  logit_bias: null,
  presence_penalty: 0,
  frequency_penalty: 0,
  repetition_penalty: 1,
  min_p: 0,
  min_tokens: 0,
  best_of: 1,
  use_beam_search: false,
  allowed_token_ids: null,
  bad_words: [],
  logprob_token_ids: null,
  prompt_embeds: null,
  truncate_prompt_tokens: null,
  structured_outputs: null,
  tools: [],
  functions: [],
}

/** A 400 naming the first field whose value asks for something this server does not do. */
export function refuseUnsupported(body: Record<string, unknown>): void {
  for (const [field, off] of Object.entries(UNSUPPORTED)) {
    const value = body[field]
    if (value === undefined || value === null || JSON.stringify(value) === JSON.stringify(off)) continue
    throw tuftError('TUFT_BAD_REQUEST', `'${field}' is not supported by this server`)
  }
  const format = body.response_format as { type?: string } | null | undefined
  if (format && format.type !== 'text') {
    throw tuftError('TUFT_BAD_REQUEST', `response_format '${format.type}' is not supported by this server`)
  }
}

/** Checks a logprobs count against openai_api.max_logprobs, as vLLM checks --max-logprobs. */
export function checkLogprobs(field: string, value: number | null | undefined, max: number): void {
  if (value === null || value === undefined) return
  if (value === -1 || value > max) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `Requested ${field} of ${value}, which is greater than the max allowed: ${max}`,
    )
  }
}

/** Alternatives to each generated token are not computed: `field` > 0 is a 400 that says what is (`instead`). */
export function refuseAlternatives(field: string, value: number | null | undefined, instead: string): void {
  if ((value ?? 0) > 0) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `${field} > 0 (alternatives to each generated token) is not supported; ${instead} returns the logprob of each generated token`,
    )
  }
}

/** The generation options of a request, vLLM's defaults applied (temperature 1, top_p 1, top_k off). */
export function generationOptions(
  body: SamplingBody,
  maxTokens: number | null,
  maxLogprobs: number,
): GenerationOptions {
  checkLogprobs('prompt_logprobs', body.prompt_logprobs, maxLogprobs)
  if (body.stream && (body.prompt_logprobs ?? 0) > 0) {
    throw tuftError('TUFT_BAD_REQUEST', '`prompt_logprobs` are not available when `stream=True`.')
  }
  const stop = body.stop ?? []
  return {
    n: body.n ?? 1,
    maxTokens,
    temperature: body.temperature ?? 1,
    topP: body.top_p ?? 1,
    topK: body.top_k ?? 0,
    seed: body.seed ?? null,
    stop: typeof stop === 'string' ? [stop] : stop,
    stopTokenIds: body.stop_token_ids ?? [],
    ignoreEos: body.ignore_eos ?? false,
    includeStopStrInOutput: body.include_stop_str_in_output ?? false,
    skipSpecialTokens: body.skip_special_tokens ?? true,
    promptLogprobs: body.prompt_logprobs ?? null,
  }
}
