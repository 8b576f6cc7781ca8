// The served models' text side (tokenizer, chat template, end-of-sequence ids), one place for the Tinker
// /api/v1/tokenize routes and the OpenAI-compatible API: `app.modelTexts.of(host)` gives a ModelText
// whose work runs on one worker thread (plugins/model-text-worker.mjs), so that building a tokenizer,
// encoding a long prompt or decoding a long completion never holds up other users' requests.

import { Worker } from 'node:worker_threads'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { tuftError } from '../core/errors.js'
import type { ModelHost } from '../core/services/models.js'

declare module 'fastify' {
  interface FastifyInstance {
    modelTexts: ModelTexts
  }
}

export interface ChatMessage {
  role: string
  content?: unknown
  [key: string]: unknown
}

/** The worker's error codes (model-text-worker.mjs) and what each becomes here. */
function errorOf(host: ModelHost, e: { code: string; message: string }): Error {
  if (e.code === 'no_template' || e.code === 'bad_messages') return tuftError('TUFT_BAD_REQUEST', e.message)
  if (e.code === 'no_tokenizer')
    return tuftError('TUFT_CONFIG', `Model '${host.name}' has no usable tokenizer: ${e.message}`)
  return new Error(`model text of '${host.name}': ${e.message}`)
}

/** One served model's text operations, each a message to the worker thread. */
export class ModelText {
  constructor(
    private readonly texts: ModelTexts,
    private readonly host: ModelHost,
    /** Ids that end generation unless ignore_eos: the tokenizer's EOS and the generation config's. */
    readonly eosIds: number[],
    readonly hasTemplate: boolean,
  ) {}

  encode(text: string, addSpecial: boolean): Promise<number[]> {
    return this.call('encode', { text, addSpecial })
  }

  decode(ids: ArrayLike<number>, skipSpecial: boolean): Promise<string> {
    return this.call('decode', { ids: Array.from(ids), skip: skipSpecial })
  }

  /** Each token decoded on its own, special tokens kept: the token strings of logprobs. */
  pieces(ids: ArrayLike<number>): Promise<string[]> {
    return this.call('pieces', { ids: Array.from(ids) })
  }

  /** The text of ids[0, end) for each of `ends`. */
  prefixes(ids: number[], ends: number[], skipSpecial: boolean): Promise<string[]> {
    return this.call('prefixes', { ids, ends, skip: skipSpecial })
  }

  /** The conversation as the model's chat template renders it (a 400 when the model has none). */
  renderChat(
    messages: ChatMessage[],
    addGenerationPrompt: boolean,
    extra: Record<string, unknown>,
  ): Promise<string> {
    return this.call('render', { messages, addGenerationPrompt, extra })
  }

  private call<T>(op: string, args: object): Promise<T> {
    return this.texts.call<T>(this.host, op, args)
  }
}

/** The worker thread and the models' loaded texts; started on first use. */
export class ModelTexts {
  private worker: Worker | null = null
  private nextId = 0
  private readonly pending = new Map<
    number,
    { host: ModelHost; resolve(v: unknown): void; reject(e: Error): void }
  >()
  private readonly loaded = new Map<string, Promise<ModelText>>()

  /** The model's text side, loaded on the worker the first time it is asked for. */
  of(host: ModelHost): Promise<ModelText> {
    let text = this.loaded.get(host.name)
    if (!text) {
      text = this.call<{ eosIds: number[]; hasTemplate: boolean }>(host, 'load', {}).then(
        (r) => new ModelText(this, host, r.eosIds, r.hasTemplate),
      )
      text.catch(() => this.loaded.delete(host.name))
      this.loaded.set(host.name, text)
    }
    return text
  }

  call<T>(host: ModelHost, op: string, args: object): Promise<T> {
    const worker = this.start()
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { host, resolve: resolve as (v: unknown) => void, reject })
      worker.postMessage({ id, op, dir: host.modelDir(), args })
    })
  }

  async close(): Promise<void> {
    const worker = this.worker
    this.worker = null
    await worker?.terminate()
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(new URL('./model-text-worker.mjs', import.meta.url))
    // An idle text thread does not keep the process alive.
    worker.unref()
    worker.on('message', (m: { id: number; result?: unknown; error?: { code: string; message: string } }) => {
      const waiter = this.pending.get(m.id)
      this.pending.delete(m.id)
      if (!waiter) return
      if (m.error === undefined) waiter.resolve(m.result)
      else waiter.reject(errorOf(waiter.host, m.error))
    })
    worker.on('error', (err) => this.fail(worker, err))
    worker.on('exit', () => this.fail(worker, new Error('the model text thread stopped')))
    this.worker = worker
    return worker
  }

  /** A dead worker fails what it held and forgets the loaded texts (they lived in it). */
  private fail(worker: Worker, err: Error): void {
    if (this.worker !== null && this.worker !== worker) return // an older thread's late exit
    this.worker = null
    this.loaded.clear()
    for (const waiter of this.pending.values()) waiter.reject(err)
    this.pending.clear()
  }
}

async function modelTextsPlugin(app: FastifyInstance): Promise<void> {
  const texts = new ModelTexts()
  app.decorate('modelTexts', texts)
  app.addHook('onClose', async () => texts.close())
}

export default fp(modelTextsPlugin, { name: 'tuft-model-texts', fastify: '5.x' })
