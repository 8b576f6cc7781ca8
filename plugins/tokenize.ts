// POST /api/v1/tokenize and /api/v1/detokenize (not part of the Tinker spec): text ↔ token ids with a
// served base model's own tokenizer files, so that a browser (the console's playground) needs no
// tokenizer of its own. `chat_template` (default true) wraps the text as one user message with the
// model's chat template and the assistant's generation prompt, when the model has a template; the
// answer says whether it did. The text work runs on the model-text thread (plugins/model-text.ts).

import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

const TokenizeBody = Type.Object(
  {
    model: Type.String({ description: 'a base model name the server serves' }),
    text: Type.String({ maxLength: 1_000_000 }),
    chat_template: Type.Boolean({ default: true }),
  },
  { additionalProperties: false },
)
const DetokenizeBody = Type.Object(
  {
    model: Type.String(),
    tokens: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 262_144 }),
  },
  { additionalProperties: false },
)
const TokenStrs = Type.Array(Type.String(), { description: 'each token decoded on its own' })

export const TokenizeRoute = {
  body: TokenizeBody,
  response: {
    200: Type.Object({
      model: Type.String(),
      tokens: Type.Array(Type.Integer()),
      token_strs: TokenStrs,
      chat_template: Type.Boolean({ description: "whether the model's chat template was applied" }),
    }),
  },
}
export const DetokenizeRoute = {
  body: DetokenizeBody,
  response: { 200: Type.Object({ model: Type.String(), text: Type.String(), token_strs: TokenStrs }) },
}

async function tokenizePlugin(app: FastifyInstance): Promise<void> {
  app.post<{ Body: Static<typeof TokenizeBody> }>(
    '/api/v1/tokenize',
    { schema: TokenizeRoute },
    async (request) => {
      const host = app.models.get(request.body.model)
      const text = await app.modelTexts.of(host)
      const chat = request.body.chat_template && text.hasTemplate
      const input = chat
        ? await text.renderChat([{ role: 'user', content: request.body.text }], true, {})
        : request.body.text
      // The template already wrote the special tokens it wants.
      const tokens = await text.encode(input, !chat)
      return { model: host.name, tokens, token_strs: await text.pieces(tokens), chat_template: chat }
    },
  )

  app.post<{ Body: Static<typeof DetokenizeBody> }>(
    '/api/v1/detokenize',
    { schema: DetokenizeRoute },
    async (request) => {
      const host = app.models.get(request.body.model)
      const { tokens } = request.body
      const text = await app.modelTexts.of(host)
      return {
        model: host.name,
        text: await text.decode(tokens, false),
        token_strs: await text.pieces(tokens),
      }
    },
  )
}

export default fp(tokenizePlugin, {
  name: 'tuft-tokenize',
  fastify: '5.x',
  dependencies: ['tuft-auth', 'tuft-engines', 'tuft-model-texts'],
})
