// POST /api/v1/tokenize and /api/v1/detokenize (not part of the Tinker spec): text ↔ token ids with a
// served base model's own tokenizer files, so that a browser (the console's playground) needs no
// tokenizer of its own. `chat_template` (default true) wraps the text as one user message with the
// model's chat template and the assistant's generation prompt, when the model has a template; the
// answer says whether it did. The tokenizers are built on a worker thread (plugins/tokenizer-worker.mjs).

import { Worker } from 'node:worker_threads'
import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { tuftError } from '../core/errors.js'
import type { ModelHost } from '../core/services/models.js'

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

type Request =
  | { op: 'tokenize'; dir: string; text: string; chatTemplate: boolean }
  | { op: 'detokenize'; dir: string; tokens: number[] }

/** Talks to the tokenizer thread, started on first use. */
class Tokenizers {
  private worker: Worker | null = null
  private nextId = 0
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()

  call<T>(request: Request): Promise<T> {
    const worker = this.start()
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      worker.postMessage({ id, ...request })
    })
  }

  async close(): Promise<void> {
    await this.worker?.terminate()
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(new URL('./tokenizer-worker.mjs', import.meta.url))
    // An idle tokenizer thread does not keep the process alive.
    worker.unref()
    worker.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const waiter = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (m.error === undefined) waiter?.resolve(m.result)
      else waiter?.reject(new Error(m.error))
    })
    worker.on('error', (err) => this.fail(err))
    worker.on('exit', () => this.fail(new Error('the tokenizer thread stopped')))
    this.worker = worker
    return worker
  }

  private fail(err: Error): void {
    this.worker = null
    for (const waiter of this.pending.values()) waiter.reject(err)
    this.pending.clear()
  }
}

async function tokenizePlugin(app: FastifyInstance): Promise<void> {
  const tokenizers = new Tokenizers()
  app.addHook('onClose', async () => tokenizers.close())

  const directoryOf = (host: ModelHost): string => {
    return host.modelDir()
  }
  const run = async <T>(host: ModelHost, request: Request): Promise<T> => {
    try {
      return await tokenizers.call<T>(request)
    } catch (err) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `Model '${host.name}' has no usable tokenizer (tokenizer.json, tokenizer_config.json): ${(err as Error).message}`,
      )
    }
  }

  app.post<{ Body: Static<typeof TokenizeBody> }>(
    '/api/v1/tokenize',
    { schema: TokenizeRoute },
    async (request) => {
      const host = app.models.get(request.body.model)
      const { text, chat_template } = request.body
      const r = await run<{ tokens: number[]; tokenStrs: string[]; chatTemplate: boolean }>(host, {
        op: 'tokenize',
        dir: directoryOf(host),
        text,
        chatTemplate: chat_template,
      })
      return { model: host.name, tokens: r.tokens, token_strs: r.tokenStrs, chat_template: r.chatTemplate }
    },
  )

  app.post<{ Body: Static<typeof DetokenizeBody> }>(
    '/api/v1/detokenize',
    { schema: DetokenizeRoute },
    async (request) => {
      const host = app.models.get(request.body.model)
      const r = await run<{ text: string; tokenStrs: string[] }>(host, {
        op: 'detokenize',
        dir: directoryOf(host),
        tokens: request.body.tokens,
      })
      return { model: host.name, text: r.text, token_strs: r.tokenStrs }
    },
  )
}

export default fp(tokenizePlugin, {
  name: 'tuft-tokenize',
  fastify: '5.x',
  dependencies: ['tuft-auth', 'tuft-engines'],
})
