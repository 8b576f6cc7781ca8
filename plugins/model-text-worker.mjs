// The thread behind plugins/model-text.ts: every served model's text side (its Hugging Face tokenizer,
// chat template and end-of-sequence ids) lives here, built on first use and kept. Building a tokenizer
// takes seconds of CPU (Qwen3's vocabulary is 151k tokens), and encoding a long prompt or decoding a long
// completion's prefixes is not free either: none of it runs on the server's event loop. Plain
// JavaScript: worker threads do not inherit the TypeScript loader that bin/tuft.js registers.

import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parentPort } from 'node:worker_threads'
import { Template } from '@huggingface/jinja'
import { TokenizerLoader } from '@lenml/tokenizers'

/** Errors the main thread turns into coded Tinker/OpenAI errors (plugins/model-text.ts). */
class TextError extends Error {
  constructor(code, message) {
    super(message)
    this.code = code
  }
}

/** The text of a special token as tokenizer_config.json gives it (a string or an AddedToken object). */
const tokenText = (t) => (typeof t === 'string' ? t : (t?.content ?? ''))

async function readJson(path) {
  if (!existsSync(path)) return undefined
  return JSON.parse(await readFile(path, 'utf8'))
}

/** tokenizer_config.json's template (a string, or the one named "default"), or chat_template.jinja. */
async function chatTemplateOf(dir, config) {
  const t = config.chat_template
  if (typeof t === 'string') return t
  if (Array.isArray(t)) return (t.find((e) => e.name === 'default') ?? t[0])?.template
  const file = join(dir, 'chat_template.jinja')
  return existsSync(file) ? readFile(file, 'utf8') : undefined
}

async function load(dir) {
  const tokenizerJSON = await readJson(join(dir, 'tokenizer.json'))
  const config = (await readJson(join(dir, 'tokenizer_config.json'))) ?? {}
  if (!tokenizerJSON) throw new TextError('no_tokenizer', `${dir} has no tokenizer.json`)
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig: config })
  const eos = new Set()
  const eosText = tokenText(config.eos_token)
  if (eosText) for (const id of tokenizer.encode(eosText, { add_special_tokens: false })) eos.add(id)
  // vLLM stops on the generation config's EOS ids too; transformers derives it from config.json when absent.
  const generation =
    (await readJson(join(dir, 'generation_config.json'))) ?? (await readJson(join(dir, 'config.json')))
  for (const id of [generation?.eos_token_id ?? []].flat()) eos.add(id)
  const source = await chatTemplateOf(dir, config)
  return { tokenizer, config, template: source === undefined ? null : new Template(source), eosIds: [...eos] }
}

/** directory → Promise of its text side; a failed load (missing files) is tried again next time. */
const loaded = new Map()
function textOf(dir) {
  let entry = loaded.get(dir)
  if (entry === undefined) {
    entry = load(dir)
    entry.catch(() => loaded.delete(dir))
    loaded.set(dir, entry)
  }
  return entry
}

const decode = (m, ids, skip) =>
  ids.length === 0
    ? ''
    : m.tokenizer.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false })

const ops = {
  load: (m) => ({ eosIds: m.eosIds, hasTemplate: m.template !== null }),
  encode: (m, { text, addSpecial }) => m.tokenizer.encode(text, { add_special_tokens: addSpecial }),
  decode: (m, { ids, skip }) => decode(m, ids, skip),
  /** Each token decoded on its own, special tokens kept (token strings of logprobs and /tokenize). */
  pieces: (m, { ids }) => ids.map((id) => decode(m, [id], false)),
  /** The decoded text of tokens[0, end) for each end (streamed deltas). */
  prefixes: (m, { ids, ends, skip }) => ends.map((end) => decode(m, ids.slice(0, end), skip)),
  render: (m, { messages, addGenerationPrompt, extra }) => {
    if (m.template === null)
      throw new TextError('no_template', 'This model has no chat template; use /completions with a prompt')
    try {
      return m.template.render({
        ...extra,
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: tokenText(m.config.bos_token),
        eos_token: tokenText(m.config.eos_token),
      })
    } catch (err) {
      // The template's own checks (roles, message order) and its raise_exception calls.
      throw new TextError('bad_messages', `The chat template cannot render these messages: ${err.message}`)
    }
  },
}

parentPort.on('message', async ({ id, op, dir, args }) => {
  try {
    parentPort.postMessage({ id, result: ops[op](await textOf(dir), args) })
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    parentPort.postMessage({ id, error: { code: err?.code ?? 'failed', message } })
  }
})
