// The OpenAI-compatible API end to end: the real `tuft` process on the embedded tiny model, driven by the
// official `openai` npm client (completions, streaming, chat, errors) and by raw HTTP for vLLM's
// extensions (prompt_logprobs, tokenize, runtime adapter loading). A trained adapter is reached by its
// tinker:// sampler path and answers exactly what the Tinker sampler answers; other users get a 404.

import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { after, before, test } from 'node:test'
import OpenAI from 'openai'
import { datumFromTokens, type SamplingClient } from '../client/index.js'
import { NATIVE_MODEL, type NativeServer, startNativeTuft, USERS } from './helpers/native-server.js'

const PROMPT = [785, 6722, 315, 9625, 374]

let server: NativeServer
/** ann's trained adapter: its sampler checkpoint path and the Tinker sampler of that checkpoint. */
let path: string
let tinker: SamplingClient

const oai = (apiKey: string, prefix = '/oai/api/v1') =>
  new OpenAI({ baseURL: `${server.baseUrl}${prefix}`, apiKey, maxRetries: 0 })

async function raw(route: string, body: unknown, apiKey: string = USERS.ann): Promise<Response> {
  return fetch(`${server.baseUrl}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

before(async () => {
  server = await startNativeTuft({
    config: {
      operators: ['ann'],
      openai_api: { runtime_lora_updating: true, lora_roots: ['checkpoints'] },
    },
  })
  const run = await server.client(USERS.ann).createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 3 })
  for (let i = 0; i < 3; i++) {
    await run.forwardBackward([datumFromTokens([...PROMPT, 1000, 2000, 3000, 13])], 'cross_entropy')
    await run.optimStep({ learning_rate: 0.01 })
  }
  path = await run.saveWeightsForSampler('oai')
  tinker = await run.createSamplingClient(path)
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-2000))
})

test("completions on a sampler path return the Tinker sampler's tokens, greedy and seeded", async () => {
  for (const params of [
    { temperature: 0, seed: 1 },
    { temperature: 1, seed: 1234 },
  ]) {
    const expected = (await tinker.sample(PROMPT, 2, { max_tokens: 8, ...params })).sequences
    const got = await oai(USERS.ann).completions.create({
      model: path,
      prompt: PROMPT,
      max_tokens: 8,
      n: 2,
      logprobs: 0,
      ...params,
      // @ts-expect-error vLLM's extension, sent in the body as the Python client's extra_body does
      return_token_ids: true,
    })
    const choices = got.choices as unknown as {
      token_ids: number[]
      logprobs: { token_logprobs: number[] }
    }[]
    assert.deepEqual(
      choices.map((c) => c.token_ids),
      expected.map((s) => s.tokens),
      `temperature ${params.temperature}`,
    )
    for (const [j, c] of choices.entries()) {
      for (const [i, lp] of c.logprobs.token_logprobs.entries())
        assert.ok(Math.abs(lp - expected[j]!.logprobs![i]!) < 1e-5)
    }
    assert.equal(got.usage?.completion_tokens, 16)
    assert.equal(got.model, path)
  }
  // Tinker's `<base model>;<path>` form names the same adapter.
  const both = await oai(USERS.ann).completions.create({
    model: `${NATIVE_MODEL};${path}`,
    prompt: PROMPT,
    max_tokens: 8,
    temperature: 0,
  })
  const alone = await oai(USERS.ann).completions.create({
    model: path,
    prompt: PROMPT,
    max_tokens: 8,
    temperature: 0,
  })
  assert.equal(both.choices[0]!.text, alone.choices[0]!.text)
})

test('streamed text equals the text answered at once, for completions and chat, on both prefixes', async () => {
  for (const prefix of ['/oai/api/v1', '/v1']) {
    const client = oai(USERS.ann, prefix)
    const request = { model: path, prompt: 'The capital of France is', max_tokens: 24, temperature: 0 }
    const whole = await client.completions.create(request)
    const stream = await client.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let finish: string | null = null
    let usage: unknown
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text
        finish = c.finish_reason ?? finish
      }
      usage = chunk.usage ?? usage
    }
    assert.ok(whole.choices[0]!.text.length > 0)
    assert.equal(text, whole.choices[0]!.text, prefix)
    assert.equal(finish, whole.choices[0]!.finish_reason)
    assert.deepEqual(usage, whole.usage)

    const chat = {
      model: path,
      messages: [{ role: 'user' as const, content: 'Hello!' }],
      max_tokens: 12,
      temperature: 0,
    }
    const reply = await client.chat.completions.create(chat)
    assert.equal(reply.choices[0]!.message.role, 'assistant')
    let streamed = ''
    for await (const chunk of await client.chat.completions.create({ ...chat, stream: true }))
      streamed += chunk.choices[0]?.delta.content ?? ''
    assert.equal(streamed, reply.choices[0]!.message.content)
    assert.equal(reply.usage?.completion_tokens, 12)
  }
})

test('the chat prompt is the model chat template rendered, as /tokenize shows it', async () => {
  const res = await raw('/tokenize', { model: path, messages: [{ role: 'user', content: 'Hi' }] })
  assert.equal(res.status, 200)
  const { tokens } = (await res.json()) as { tokens: number[] }
  // <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n in Qwen3's ids.
  assert.deepEqual(tokens, [151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198])
  const chat = await oai(USERS.ann).chat.completions.create({
    model: path,
    messages: [{ role: 'user', content: 'Hi' }],
    max_tokens: 3,
    temperature: 0,
  })
  assert.equal(chat.usage?.prompt_tokens, tokens.length)
  const back = await raw('/v1/detokenize', { tokens: [9707, 11, 1879, 0] })
  assert.deepEqual(await back.json(), { prompt: 'Hello, world!' })
})

test('prompt_logprobs are per position maps by token id, equal to compute_logprobs', async () => {
  const seq = [...PROMPT, 1000, 2000]
  const expected = await tinker.computeLogprobs(seq)
  const res = await raw('/v1/completions', { model: path, prompt: seq, max_tokens: 1, prompt_logprobs: 3 })
  assert.equal(res.status, 200)
  const body = (await res.json()) as {
    choices: { prompt_logprobs: (Record<string, { logprob: number; rank: number | null }> | null)[] }[]
  }
  const lps = body.choices[0]!.prompt_logprobs
  assert.equal(lps.length, seq.length)
  assert.equal(lps[0], null)
  for (let i = 1; i < seq.length; i++) {
    const entry = lps[i]!
    assert.ok(Math.abs(entry[seq[i]!]!.logprob - expected[i]!) < 1e-5, `position ${i}`)
    const ranked = Object.values(entry).filter((e) => e.rank !== null && e.rank <= 3)
    assert.equal(ranked.length, 3, 'the top 3 alternatives are there')
  }
})

test('echo with logprobs: every choice starts with the prompt, its text, tokens and logprobs', async () => {
  const got = await oai(USERS.ann).completions.create({
    model: path,
    prompt: PROMPT,
    max_tokens: 2,
    n: 2,
    temperature: 1,
    seed: 7,
    echo: true,
    logprobs: 0,
  })
  const [a, b] = got.choices
  for (const c of [a!, b!]) {
    const lp = c.logprobs!
    assert.equal(lp.tokens!.length, PROMPT.length + 2)
    assert.equal(lp.token_logprobs![0], null)
    assert.ok(lp.token_logprobs!.slice(1).every((x) => typeof x === 'number' && x <= 0))
    assert.ok(c.text.startsWith(lp.tokens!.slice(0, PROMPT.length).join('')), c.text)
    assert.deepEqual(lp.text_offset!.slice(0, 2), [0, lp.tokens![0]!.length])
  }
  const head = (c: typeof a) => ({
    tokens: c!.logprobs!.tokens!.slice(0, PROMPT.length),
    lps: c!.logprobs!.token_logprobs!.slice(0, PROMPT.length),
  })
  assert.deepEqual(head(a), head(b))
})

test("another user's unpublished adapter is a 404 until published; bad keys 401, bad parameters 400", async () => {
  const ben = oai(USERS.ben)
  const notFound = await ben.completions
    .create({ model: path, prompt: PROMPT, max_tokens: 2 })
    .catch((e) => e)
  assert.ok(notFound instanceof OpenAI.NotFoundError, String(notFound))
  assert.deepEqual([notFound.type, notFound.code], ['not_found_error', 'TUFT_NOT_FOUND'])
  const listed = async (key: string) => (await oai(key).models.list()).data.map((m) => m.id)
  assert.ok(!(await listed(USERS.ben)).includes(path))
  assert.deepEqual((await listed(USERS.ann)).slice(0, 2), [NATIVE_MODEL, path])

  await server.client(USERS.ann).createRestClient().publishCheckpointFromTinkerPath(path)
  assert.ok((await listed(USERS.ben)).includes(path))
  const published = await ben.completions.create({
    model: path,
    prompt: PROMPT,
    max_tokens: 4,
    temperature: 0,
  })
  assert.equal(published.choices[0]!.text.length > 0, true)
  await server.client(USERS.ann).createRestClient().unpublishCheckpointFromTinkerPath(path)

  const badKey = await oai('tml-nobody')
    .models.list()
    .catch((e) => e)
  assert.ok(badKey instanceof OpenAI.AuthenticationError)
  const badParam = await oai(USERS.ann)
    .completions.create({ model: path, prompt: PROMPT, temperature: -1 })
    .catch((e) => e)
  assert.ok(badParam instanceof OpenAI.BadRequestError)
  assert.equal(badParam.param, 'temperature')
  const unsupported = await oai(USERS.ann)
    .completions.create({ model: path, prompt: PROMPT, presence_penalty: 0.5 })
    .catch((e) => e)
  assert.ok(unsupported instanceof OpenAI.BadRequestError)
  assert.match(unsupported.message, /presence_penalty/)
  const tooLong = await oai(USERS.ann)
    .completions.create({ model: path, prompt: PROMPT, max_tokens: 100_000 })
    .catch((e) => e)
  assert.ok(tooLong instanceof OpenAI.BadRequestError)
  assert.match(tooLong.message, /maximum context length/)
  // Alternatives to each token are not computed: both routes say so, and what is.
  const alternatives = [
    await oai(USERS.ann)
      .completions.create({ model: path, prompt: PROMPT, logprobs: 2 })
      .catch((e) => e),
    await oai(USERS.ann)
      .chat.completions.create({
        model: path,
        messages: [{ role: 'user', content: 'Hi' }],
        logprobs: true,
        top_logprobs: 2,
      })
      .catch((e) => e),
  ]
  for (const e of alternatives) {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e))
    assert.match(e.message, /logprobs > 0 \(alternatives to each generated token\) is not supported/)
  }
})

test("vLLM's runtime adapter endpoints: operators load from lora_roots, list, sample and unload", async () => {
  const dir = join(server.dir, 'checkpoints', 'ann')
  const adapterDir = (await readdir(dir, { recursive: true }))
    .filter((f) => f.endsWith('adapter_config.json'))
    .map((f) => join(dir, dirname(f)))[0]!
  const load = (body: unknown, key: string = USERS.ann) => raw('/v1/load_lora_adapter', body, key)

  assert.equal((await load({ lora_name: 'mine', lora_path: adapterDir }, USERS.ben)).status, 403)
  assert.equal((await load({ lora_name: 'mine', lora_path: '/etc' })).status, 400)
  const ok = await load({ lora_name: 'mine', lora_path: adapterDir })
  assert.equal(ok.status, 200)
  assert.equal(await ok.text(), "Success: LoRA adapter 'mine' added successfully.")
  const again = await load({ lora_name: 'mine', lora_path: adapterDir })
  assert.equal(again.status, 400)
  assert.match(((await again.json()) as { error: { message: string } }).error.message, /already been loaded/)

  const card = (await oai(USERS.ann, '/v1').models.list()).data.find((m) => m.id === 'mine') as unknown as {
    root: string
    parent: string
  }
  assert.deepEqual([card.root, card.parent], [adapterDir, NATIVE_MODEL])
  const byName = await oai(USERS.ann, '/v1').completions.create({
    model: 'mine',
    prompt: PROMPT,
    max_tokens: 6,
    temperature: 0,
  })
  const byPath = await oai(USERS.ann, '/v1').completions.create({
    model: path,
    prompt: PROMPT,
    max_tokens: 6,
    temperature: 0,
  })
  assert.equal(byName.choices[0]!.text, byPath.choices[0]!.text)

  const unload = await raw('/v1/unload_lora_adapter', { lora_name: 'mine' })
  assert.equal(await unload.text(), "Success: LoRA adapter 'mine' removed successfully.")
  assert.equal((await raw('/v1/unload_lora_adapter', { lora_name: 'mine' })).status, 404)
  const gone = await oai(USERS.ann, '/v1')
    .completions.create({ model: 'mine', prompt: PROMPT })
    .catch((e) => e)
  assert.ok(gone instanceof OpenAI.NotFoundError)
})
