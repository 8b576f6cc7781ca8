// POST /chat/completions: the conversation rendered with the model's own chat template, then sampled like
// a completion; answered at once or as server-sent events (role first, content deltas, finish).

import { randomUUID } from 'node:crypto'
import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { tuftError } from '../../core/errors.js'
import { userOf } from '../auth.js'
import type { ChatMessage, ModelText } from '../model-text.js'
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

const ContentPart = Type.Object({ type: Type.String(), text: Type.Optional(Type.String()) })
export const Messages = Type.Array(
  Type.Object({
    role: Type.String({ minLength: 1 }),
    content: Type.Optional(Type.Union([Type.String(), Type.Array(ContentPart), Type.Null()])),
  }),
  { minItems: 1 },
)

const ChatRequest = Type.Object({
  ...SamplingFields,
  messages: Messages,
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  logprobs: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  top_logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  add_generation_prompt: Type.Optional(Type.Boolean()),
  continue_final_message: Type.Optional(Type.Boolean()),
  chat_template_kwargs: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
})
type ChatRequest = Static<typeof ChatRequest>

/** The conversation's tokens: text parts joined per message, rendered by the template, no extra specials. */
export async function chatPrompt(
  text: ModelText,
  body: {
    messages: Static<typeof Messages>
    add_generation_prompt?: boolean
    continue_final_message?: boolean
    chat_template_kwargs?: Record<string, unknown>
    add_special_tokens?: boolean
  },
): Promise<number[]> {
  const messages: ChatMessage[] = body.messages.map((m, i) => {
    if (typeof m.content === 'string' || m.content === null || m.content === undefined) return { ...m }
    const parts = m.content.map((part, j) => {
      if (part.type !== 'text' || part.text === undefined)
        throw tuftError('TUFT_BAD_REQUEST', `messages[${i}].content[${j}]: only text parts are supported`)
      return part.text
    })
    return { ...m, content: parts.join('') }
  })
  const continueLast = body.continue_final_message ?? false
  let rendered = await text.renderChat(
    messages,
    !continueLast && (body.add_generation_prompt ?? true),
    body.chat_template_kwargs ?? {},
  )
  if (continueLast) {
    // The assistant's last message stays open: the render is cut where its content ends.
    const last = messages[messages.length - 1]?.content
    const at = typeof last === 'string' ? rendered.lastIndexOf(last) : -1
    if (at >= 0) rendered = rendered.slice(0, at + (last as string).length)
  }
  // vLLM tokenizes a rendered conversation without adding special tokens (the template has them).
  return text.encode(rendered, body.add_special_tokens ?? false)
}

async function logprobsOf(s: Finished, text: ModelText) {
  const pieces = await text.pieces(s.tokens)
  return {
    content: pieces.map((token, i) => {
      return {
        token,
        logprob: clampLogprob(s.logprobs[i]!),
        bytes: [...Buffer.from(token, 'utf8')],
        top_logprobs: [],
      }
    }),
  }
}

function choicesOf(r: PromptResult, body: ChatRequest, text: ModelText) {
  return Promise.all(
    r.sequences.map(async (s, index) => ({
      index,
      message: { role: 'assistant', content: s.text, tool_calls: [] },
      logprobs: body.logprobs ? await logprobsOf(s, text) : null,
      finish_reason: s.finishReason,
      stop_reason: s.stopReason,
      ...(body.return_token_ids ? { token_ids: s.tokens } : {}),
    })),
  )
}

export default async function chatRoutes(app: FastifyInstance, ctx: OaiContext): Promise<void> {
  const maxLogprobs = app.tuftConfig.openai_api.max_logprobs
  app.post<{ Body: ChatRequest }>(
    '/chat/completions',
    { schema: { body: ChatRequest } },
    async (request, reply) => {
      const body = request.body
      refuseUnsupported(body as Record<string, unknown>)
      checkLogprobs('top_logprobs', body.top_logprobs, maxLogprobs)
      refuseAlternatives('top_logprobs', body.top_logprobs, 'logprobs: true')
      const target = await resolveTarget(app, ctx.loras, userOf(request), body.model)
      const text = await ctx.texts.of(target.host)
      const prompt = await chatPrompt(text, body)
      const options = generationOptions(
        body,
        body.max_completion_tokens ?? body.max_tokens ?? null,
        maxLogprobs,
      )
      const [result] = await generate(app, request, target, text, [prompt], options)
      const r = result!
      const head = {
        id: `chatcmpl-${randomUUID()}`,
        created: Math.floor(Date.now() / 1000),
        model: target.model,
      }
      const choices = await choicesOf(r, body, text)
      const usage = usageOf([r])
      if (!body.stream) {
        return {
          ...head,
          object: 'chat.completion',
          choices,
          usage,
          ...(body.prompt_logprobs != null ? { prompt_logprobs: await promptLogprobsOf(r, text) } : {}),
          ...(body.return_token_ids ? { prompt_token_ids: r.prompt } : {}),
        }
      }
      // One list of deltas per sequence, in the order of the choices (choice i is sequence i).
      const deltas = await Promise.all(
        r.sequences.map((s) => textDeltas(s.tokens, s.text, text, options.skipSpecialTokens)),
      )
      return sendEvents(reply, streamOf(head, choices, deltas, r, body, usage))
    },
  )
}

/** Per choice: the role, then content deltas, the last one with the finish; usage at the end if asked. */
function* streamOf(
  head: { id: string; created: number; model: string },
  choices: Awaited<ReturnType<typeof choicesOf>>,
  deltasOf: TextDelta[][],
  r: PromptResult,
  body: ChatRequest,
  usage: ReturnType<typeof usageOf>,
) {
  const chunk = (c: Record<string, unknown>) => ({ ...head, object: 'chat.completion.chunk', choices: [c] })
  for (const choice of choices) {
    const s = r.sequences[choice.index]!
    yield chunk({
      index: choice.index,
      delta: { role: 'assistant', content: '' },
      logprobs: null,
      finish_reason: null,
    })
    const deltas = deltasOf[choice.index]!
    for (const [d, delta] of deltas.entries()) {
      const last = d === deltas.length - 1
      yield chunk({
        index: choice.index,
        delta: { content: delta.text },
        logprobs: choice.logprobs ? { content: choice.logprobs.content.slice(delta.from, delta.to) } : null,
        finish_reason: last ? choice.finish_reason : null,
        stop_reason: last ? choice.stop_reason : null,
        ...(body.return_token_ids ? { token_ids: s.tokens.slice(delta.from, delta.to) } : {}),
      })
    }
  }
  if (body.stream_options?.include_usage)
    yield { ...head, object: 'chat.completion.chunk', choices: [], usage }
}
