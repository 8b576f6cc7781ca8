// The tokenizer thread behind POST /api/v1/tokenize and /detokenize (plugins/tokenize.ts). Building a
// Hugging Face tokenizer takes seconds of CPU (Qwen3's vocabulary is 151k tokens), so it happens here,
// never on the server's event loop. Plain JavaScript: worker threads do not inherit the TypeScript
// loader that bin/tuft.js registers. One tokenizer per model directory, built on first use.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parentPort } from 'node:worker_threads'
import { Template } from '@huggingface/jinja'
import { TokenizerLoader } from '@lenml/tokenizers'

/** directory → Promise<{ tokenizer, template: Template | null, config }> */
const loaded = new Map()

async function load(dir) {
  const [json, config] = await Promise.all(
    ['tokenizer.json', 'tokenizer_config.json'].map(async (f) =>
      JSON.parse(await readFile(join(dir, f), 'utf8')),
    ),
  )
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: config })
  const source = typeof config.chat_template === 'string' ? config.chat_template : null
  return { tokenizer, template: source === null ? null : new Template(source), config }
}

function tokenizerFor(dir) {
  let entry = loaded.get(dir)
  if (entry === undefined) {
    entry = load(dir)
    // A failed load (missing files) is tried again on the next request.
    entry.catch(() => loaded.delete(dir))
    loaded.set(dir, entry)
  }
  return entry
}

/** The text of a special token as tokenizer_config.json gives it (a string or an AddedToken object). */
const tokenText = (t) => (typeof t === 'string' ? t : (t?.content ?? ''))

async function handle(msg) {
  const { tokenizer, template, config } = await tokenizerFor(msg.dir)
  const pieces = (ids) => ids.map((id) => tokenizer.decode([id]))
  if (msg.op === 'tokenize') {
    const chat = msg.chatTemplate && template !== null
    const text = chat
      ? template.render({
          messages: [{ role: 'user', content: msg.text }],
          add_generation_prompt: true,
          bos_token: tokenText(config.bos_token),
          eos_token: tokenText(config.eos_token),
        })
      : msg.text
    // The template already wrote the special tokens it wants.
    const tokens = tokenizer.encode(text, { add_special_tokens: !chat })
    return { tokens, tokenStrs: pieces(tokens), chatTemplate: chat }
  }
  return { text: tokenizer.decode(msg.tokens), tokenStrs: pieces(msg.tokens) }
}

parentPort.on('message', (msg) => {
  handle(msg).then(
    (result) => parentPort.postMessage({ id: msg.id, result }),
    (err) => parentPort.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }),
  )
})
