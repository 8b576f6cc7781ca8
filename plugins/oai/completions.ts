// POST /completions: OpenAI's text completions with vLLM's extensions (token-id prompts, top_k,
// stop_token_ids, prompt_logprobs, return_token_ids, return_tokens_as_token_ids, ...), answered at once
// or as server-sent events.

import { randomUUID } from 'node:crypto'
import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { tuftError } from '../../core/errors.js'
import { userOf } from '../auth.js'
import type { ModelText } from '../model-text.js'
import type { OaiContext } from './context.js'
import {
  clampLogprob,
  type Finished,
  generate,
  type PromptResult,
  promptLogprobsOf,
  usageOf,
} from './generate.js'
import {
  checkLogprobs,
  generationOptions,
  refuseAlternatives,
  refuseUnsupported,
  SamplingFields,
} from './params.js'
import { sendEvents, type TextDelta, textDeltas } from './sse.js'
import { resolveTarget } from './targets.js'

const TokenIds = Type.Array(Type.Integer({ minimum: 0 }))

const CompletionRequest = Type.Object({
  ...SamplingFields,
  prompt: Type.Union([Type.String(), Type.Array(Type.String()), TokenIds, Type.Array(TokenIds)]),
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  echo: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: -1 }), Type.Null()])),
  return_tokens_as_token_ids: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  add_special_tokens: Type.Optional(Type.Boolean()),
})
type CompletionRequest = Static<typeof CompletionRequest>

export const CompletionRoute = { body: CompletionRequest }

/** OpenAI's default when max_tokens is absent or null. */
const DEFAULT_MAX_TOKENS = 16

/** The prompts of a request as token ids: a string, a token list, or a list of either. */
function promptsOf(
  prompt: CompletionRequest['prompt'],
  text: ModelText,
  addSpecial: boolean,
): Promise<number[][]> {
  const list: (string | number[])[] =
    typeof prompt === 'string' || (prompt.length > 0 && typeof prompt[0] === 'number')
      ? [prompt as string | number[]]
      : (prompt as (string | number[])[])
  if (list.length === 0) throw tuftError('TUFT_BAD_REQUEST', 'prompt is empty')
  return Promise.all(list.map((p) => (typeof p === 'string' ? text.encode(p, addSpecial) : p)))
}

interface LogprobsSection {
  tokens: string[]
  token_logprobs: (number | null)[]
  top_logprobs: (Record<string, number> | null)[]
  text_offset: number[]
}

/** OpenAI's completion logprobs over `ids` (the prompt's first, when echoed, has none). */
async function logprobsSection(
  ids: number[],
  lps: (number | null)[],
  text: ModelText,
  asIds: boolean,
  offset0: number,
): Promise<LogprobsSection> {
  const section: LogprobsSection = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] }
  let offset = offset0
  const tokens = asIds ? ids.map((id) => `token_id:${id}`) : await text.pieces(ids)
  tokens.forEach((token, i) => {
    const lp = lps[i] ?? null
    section.tokens.push(token)
    section.token_logprobs.push(lp === null ? null : clampLogprob(lp))
    section.top_logprobs.push(lp === null ? null : { [token]: clampLogprob(lp) })
    section.text_offset.push(offset)
    offset += token.length
  })
  return section
}

async function choicesOf(results: PromptResult[], body: CompletionRequest, text: ModelText) {
  const skip = body.skip_special_tokens ?? true
  const asIds = body.return_tokens_as_token_ids ?? false
  const perPrompt = await Promise.all(
    results.map(async (r, p) => {
      const promptText = body.echo ? await text.decode(r.prompt, skip) : ''
      const promptLogprobs = r.result.promptLogprobs
      const promptLogprobsOut =
        body.prompt_logprobs !== undefined && body.prompt_logprobs !== null
          ? await promptLogprobsOf(r, text)
          : null
      const withLogprobs = body.logprobs !== undefined && body.logprobs !== null
      // The echoed prompt's section is the same for every sequence of the prompt: built once.
      const echoed =
        withLogprobs && body.echo
          ? await logprobsSection(
              r.prompt,
              r.prompt.map((_, i) => (i === 0 || !promptLogprobs ? null : promptLogprobs[i]!)),
              text,
              asIds,
              0,
            )
          : null
      return Promise.all(
        r.sequences.map(async (s: Finished, j) => {
          let logprobs: LogprobsSection | null = null
          if (withLogprobs) {
            const out = await logprobsSection(s.tokens, s.logprobs, text, asIds, promptText.length)
            if (echoed)
              for (const key of Object.keys(out) as (keyof LogprobsSection)[])
                (out[key] as unknown[]).unshift(...echoed[key])
            logprobs = out
          }
          return {
            index: p * r.sequences.length + j,
            text: promptText + s.text,
            logprobs,
            finish_reason: s.finishReason,
            stop_reason: s.stopReason,
            ...(body.return_token_ids ? { token_ids: s.tokens, prompt_token_ids: r.prompt } : {}),
            ...(promptLogprobsOut !== null ? { prompt_logprobs: promptLogprobsOut } : {}),
          }
        }),
      )
    }),
  )
  return perPrompt.flat()
}

export default async function completionRoutes(app: FastifyInstance, ctx: OaiContext): Promise<void> {
  const maxLogprobs = app.tuftConfig.openai_api.max_logprobs
  app.post<{ Body: CompletionRequest }>(
    '/completions',
    { schema: CompletionRoute },
    async (request, reply) => {
      const body = request.body
      refuseUnsupported(body as Record<string, unknown>)
      checkLogprobs('logprobs', body.logprobs, maxLogprobs)
      refuseAlternatives('logprobs', body.logprobs, 'logprobs: 0')
      const target = await resolveTarget(app, ctx.loras, userOf(request), body.model)
      const text = await ctx.texts.of(target.host)
      const prompts = await promptsOf(body.prompt, text, body.add_special_tokens ?? true)
      // vLLM scores an echoed prompt with `logprobs` alternatives when prompt_logprobs is unset.
      const promptLogprobs =
        body.prompt_logprobs ?? (body.echo && body.logprobs != null ? body.logprobs : null)
      const options = generationOptions(
        { ...body, prompt_logprobs: promptLogprobs },
        body.max_tokens ?? DEFAULT_MAX_TOKENS,
        maxLogprobs,
      )
      const results = await generate(app, request, target, text, prompts, options)
      const head = { id: `cmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: target.model }
      const choices = await choicesOf(results, body, text)
      const usage = usageOf(results)
      if (!body.stream) return { ...head, object: 'text_completion', choices, usage }
      const sequences = results.flatMap((r) => r.sequences.map((s) => ({ s, prompt: r.prompt })))
      const skip = options.skipSpecialTokens
      const deltas = await Promise.all(sequences.map(({ s }) => textDeltas(s.tokens, s.text, text, skip)))
      return sendEvents(reply, streamOf(head, choices, sequences, deltas, body, usage))
    },
  )
}

/** One chunk per token delta of every choice, the finish on each choice's last chunk, then usage if asked. */
function* streamOf(
  head: { id: string; created: number; model: string },
  choices: Awaited<ReturnType<typeof choicesOf>>,
  sequences: { s: Finished; prompt: number[] }[],
  deltasOf: TextDelta[][],
  body: CompletionRequest,
  usage: ReturnType<typeof usageOf>,
) {
  const chunk = (c: Record<string, unknown>) => ({ ...head, object: 'text_completion', choices: [c] })
  for (const [i, choice] of choices.entries()) {
    const { s, prompt } = sequences[i]!
    const echoed = choice.text.slice(0, choice.text.length - s.text.length)
    const deltas = deltasOf[i]!
    // Echoed prompt tokens come first in the logprobs; each chunk carries its own tokens' entries.
    const skipped = choice.logprobs ? choice.logprobs.tokens.length - s.tokens.length : 0
    const lp = choice.logprobs
    const slice = (from: number, to: number): LogprobsSection | null =>
      lp && {
        tokens: lp.tokens.slice(from, to),
        token_logprobs: lp.token_logprobs.slice(from, to),
        top_logprobs: lp.top_logprobs.slice(from, to),
        text_offset: lp.text_offset.slice(from, to),
      }
    for (const [d, delta] of deltas.entries()) {
      const last = d === deltas.length - 1
      yield chunk({
        index: choice.index,
        text: d === 0 ? echoed + delta.text : delta.text,
        logprobs: slice(d === 0 ? 0 : skipped + delta.from, skipped + delta.to),
        finish_reason: last ? choice.finish_reason : null,
        stop_reason: last ? choice.stop_reason : null,
        ...(body.return_token_ids
          ? {
              token_ids: s.tokens.slice(delta.from, delta.to),
              ...(d === 0 ? { prompt_token_ids: prompt } : {}),
            }
          : {}),
      })
    }
  }
  if (body.stream_options?.include_usage) yield { ...head, object: 'text_completion', choices: [], usage }
}
