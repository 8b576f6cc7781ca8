// POST /tokenize and /detokenize (vLLM's): text or a chat conversation to token ids with the model's own
// tokenizer and chat template, and token ids back to text.

import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { checkTokenIds } from '../../core/services/train-items.js'
import { userOf } from '../auth.js'
import { chatPrompt, Messages } from './chat.js'
import type { OaiContext } from './context.js'
import { resolveTarget } from './targets.js'

const TokenizeRequest = Type.Union([
  Type.Object({
    model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    prompt: Type.String(),
    add_special_tokens: Type.Optional(Type.Boolean()),
    return_token_strs: Type.Optional(Type.Boolean()),
  }),
  Type.Object({
    model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    messages: Messages,
    add_generation_prompt: Type.Optional(Type.Boolean()),
    continue_final_message: Type.Optional(Type.Boolean()),
    chat_template_kwargs: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    add_special_tokens: Type.Optional(Type.Boolean()),
    return_token_strs: Type.Optional(Type.Boolean()),
  }),
])
type TokenizeRequest = Static<typeof TokenizeRequest>

const DetokenizeRequest = Type.Object({
  model: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  tokens: Type.Array(Type.Integer({ minimum: 0 })),
})
type DetokenizeRequest = Static<typeof DetokenizeRequest>

export default async function tokenizeRoutes(app: FastifyInstance, ctx: OaiContext): Promise<void> {
  app.post<{ Body: TokenizeRequest }>('/tokenize', { schema: { body: TokenizeRequest } }, async (request) => {
    const body = request.body
    const target = await resolveTarget(app, ctx.loras, userOf(request), body.model)
    const text = await ctx.texts.of(target.host)
    const tokens =
      'messages' in body
        ? await chatPrompt(text, body)
        : await text.encode(body.prompt, body.add_special_tokens ?? true)
    return {
      count: tokens.length,
      max_model_len: target.host.maxContext(),
      tokens,
      token_strs: body.return_token_strs ? await text.pieces(tokens) : null,
    }
  })
  app.post<{ Body: DetokenizeRequest }>(
    '/detokenize',
    { schema: { body: DetokenizeRequest } },
    async (request) => {
      const target = await resolveTarget(app, ctx.loras, userOf(request), request.body.model)
      await target.host.whenReady()
      checkTokenIds(request.body.tokens, 'tokens', target.host.info().vocabSize)
      const text = await ctx.texts.of(target.host)
      return { prompt: await text.decode(request.body.tokens, false) }
    },
  )
}
