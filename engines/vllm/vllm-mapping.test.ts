// The Tinker ↔ vLLM mapping without a server: the /v1/completions body a job becomes, the SampleResult
// read back (prompt logprobs by token id, top-K by rank), and vLLM's HTTP answers as coded errors.

import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { SampleJob } from '../../core/engine.js'
import { isTuftError } from '../../core/errors.js'
import { ModelNotFound, Replica } from './replica.js'
import { type CompletionAnswer, completionRequest, sampleResultOf } from './request.js'

const job = (over: Partial<SampleJob> = {}): SampleJob => ({
  adapter: null,
  prompt: Int32Array.from([5, 6, 7]),
  numSamples: 2,
  maxTokens: 100,
  temperature: 0.7,
  topK: -1,
  topP: 0.9,
  seed: 17n,
  stopTokens: [13],
  stopStrings: ['\n\n'],
  promptLogprobs: false,
  topkPromptLogprobs: 0,
  ...over,
})

test('a job becomes a token-id completion with stop strings and ids apart, no implicit EOS, capped at the context', () => {
  const body = JSON.parse(completionRequest(job(), 'adapter-1', 50, 20))
  assert.deepEqual(body, {
    model: 'adapter-1',
    prompt: [5, 6, 7],
    n: 2,
    max_tokens: 47,
    temperature: 0.7,
    top_p: 0.9,
    top_k: 0,
    seed: 17,
    stop: ['\n\n'],
    stop_token_ids: [13],
    ignore_eos: true,
    logprobs: 0,
    return_token_ids: true,
  })
  const withPrompt = JSON.parse(completionRequest(job({ promptLogprobs: true, topK: 8 }), 'm', 50, 20))
  assert.deepEqual([withPrompt.prompt_logprobs, withPrompt.top_k], [0, 8])
  assert.equal(JSON.parse(completionRequest(job({ topkPromptLogprobs: 3 }), 'm', 50, 20)).prompt_logprobs, 3)
  assert.throws(
    () => completionRequest(job({ topkPromptLogprobs: 21 }), 'm', 50, 20),
    (e: unknown) => isTuftError(e) && e.statusCode === 400 && /--max-logprobs/.test(e.message),
  )
})

test("vLLM's answer becomes the SampleResult: tokens, logprobs, finish, prompt logprobs by id and top-K by rank", () => {
  const answer: CompletionAnswer = {
    choices: [
      { index: 1, token_ids: [9], finish_reason: 'length', logprobs: { token_logprobs: [-0.5] } },
      {
        index: 0,
        token_ids: [8, 13],
        finish_reason: 'stop',
        logprobs: { token_logprobs: [-0.1, -0.2] },
        prompt_logprobs: [
          null,
          { '6': { logprob: -3, rank: 4 }, '1': { logprob: -1, rank: 1 }, '2': { logprob: -2, rank: 2 } },
          { '7': { logprob: -0.25, rank: 1 }, '3': { logprob: -2.5, rank: 2 } },
        ],
      },
    ],
  }
  const r = sampleResultOf(job({ promptLogprobs: true, topkPromptLogprobs: 2 }), answer)
  assert.deepEqual(
    r.sequences.map((s) => [Array.from(s.tokens), Array.from(s.logprobs), s.stopReason]),
    [
      [[8, 13], [-0.1, -0.2].map(Math.fround), 'stop'],
      [[9], [-0.5], 'length'],
    ],
  )
  assert.deepEqual(Array.from(r.promptLogprobs!), [Number.NaN, -3, -0.25])
  const t = r.topkPromptLogprobs!
  assert.deepEqual([t.k, t.promptLength], [2, 3])
  assert.deepEqual(Array.from(t.tokenIds), [0, 0, 1, 2, 7, 3])
  assert.deepEqual(Array.from(t.logprobs), [-99999, -99999, -1, -2, -0.25, -2.5])
  assert.throws(() => sampleResultOf(job(), { choices: [answer.choices[0]!] }), /1 sequences for n=2/)
})

test("vLLM's HTTP answers map to Tinker's categories; an unreachable server is a retryable 503", async () => {
  const replies: Record<string, [number, string]> = {
    '/bad': [400, '{"error":{"message":"bad seed","type":"BadRequestError","param":null,"code":400}}'],
    '/busy': [429, '{"error":{"message":"slow down"}}'],
    '/gone': [404, '{"error":{"message":"The model `x` does not exist.","type":"NotFoundError"}}'],
    '/boom': [500, '{"object":"error","message":"engine dead"}'],
    '/ok': [200, 'Success'],
  }
  const srv = createServer((req, res) => {
    const [status, body] = replies[req.url!]!
    res.writeHead(status).end(body)
  })
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`
  const replica = new Replica(url, 'tml-k', 5000)
  try {
    const code = (path: string) =>
      replica.post(path, '{}').then(
        () => 'ok',
        (e: unknown) =>
          e instanceof ModelNotFound
            ? 'not found'
            : isTuftError(e)
              ? `${e.statusCode} ${e.category}`
              : String(e),
      )
    assert.equal(await code('/ok'), 'ok')
    assert.equal(await code('/bad'), '400 user')
    assert.equal(await code('/busy'), '429 server')
    assert.equal(await code('/gone'), 'not found')
    assert.equal(await code('/boom'), '500 server')
    await replica.post('/bad', '{}').catch((e: Error) => assert.match(e.message, /bad seed/))
  } finally {
    await new Promise((r) => srv.close(r))
  }
  assert.equal(
    await replica.post('/ok', '{}').catch((e: unknown) => isTuftError(e) && `${e.statusCode} ${e.category}`),
    '503 server',
  )
  assert.equal(replica.down, true)
})
