// Sampling service bounds on the native engine, through HTTP against the real `tuft` process: resident
// sampler adapters are bounded by max_loras (an evicted adapter is reloaded from its checkpoint on its
// next use, with the same answers), and asample answers 429 above server.sample_queue_limit (spec §3.19).

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { datumFromTokens, type SamplingClient } from '../client/index.js'
import { NATIVE_MODEL, type NativeServer, startNativeTuft, USERS } from './helpers/native-server.js'

const PROMPT = [785, 6722, 315]
const QUEUE_LIMIT = 3

let server: NativeServer

before(async () => {
  server = await startNativeTuft({ model: { max_loras: 2 }, server: { sample_queue_limit: QUEUE_LIMIT } })
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-2000))
})

test('max_loras 2 with 3 checkpoints: evicted adapters reload from disk and answer the same', async () => {
  const client = server.client(USERS.ann)
  const run = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 4 })
  const samplers: SamplingClient[] = []
  for (let c = 0; c < 3; c++) {
    await run.forwardBackward([datumFromTokens([...PROMPT, 1000 + c, 2000 + c, 13])], 'cross_entropy')
    await run.optimStep({ learning_rate: 0.02 })
    samplers.push(
      await client.createSamplingClient({ modelPath: await run.saveWeightsForSampler(`ckpt-${c}`) }),
    )
  }
  const ask = (s: SamplingClient) => s.sample(PROMPT, 1, { max_tokens: 6, temperature: 0 })
  const first = []
  for (const s of samplers) first.push(await ask(s))
  // The checkpoints differ, so serving one with another's adapter would show.
  const distinct = new Set(first.map((r) => JSON.stringify(r.sequences[0]!.logprobs)))
  assert.equal(distinct.size, 3)
  // Round-robin over 3 adapters with room for 2: every use after the first round is a reload.
  for (let round = 0; round < 2; round++) {
    for (const [c, s] of samplers.entries()) {
      const again = await ask(s)
      assert.deepEqual(
        again.sequences[0]!.tokens,
        first[c]!.sequences[0]!.tokens,
        `round ${round}, ckpt ${c}`,
      )
      for (const [i, lp] of again.sequences[0]!.logprobs!.entries())
        assert.ok(Math.abs(lp - first[c]!.sequences[0]!.logprobs![i]!) < 1e-5, `ckpt ${c} logprob ${i}`)
    }
  }
  // And concurrently: three adapters wanted at once by three requests each.
  const together = await Promise.all(samplers.flatMap((s) => [ask(s), ask(s), ask(s)]))
  for (const [n, r] of together.entries())
    assert.deepEqual(r.sequences[0]!.tokens, first[Math.floor(n / 3)]!.sequences[0]!.tokens, `request ${n}`)
})

test('asample answers 429 over sample_queue_limit, and accepts again once requests finish', async () => {
  const client = server.client(USERS.ben)
  const sampler = await client.createSamplingClient({ baseModel: NATIVE_MODEL })
  const post = (seq: number) =>
    fetch(`${server.baseUrl}/api/v1/asample`, {
      method: 'POST',
      headers: {
        'x-api-key': USERS.ben,
        'content-type': 'application/json',
        'X-Tinker-Sampling-Backpressure': '1',
      },
      body: JSON.stringify({
        sampling_session_id: sampler.samplerId,
        seq_id: seq,
        num_samples: 1,
        prompt: { chunks: [{ type: 'encoded_text', tokens: PROMPT }] },
        sampling_params: { max_tokens: 200, temperature: 1, top_k: -1, top_p: 1, seed: seq },
        prompt_logprobs: false,
        topk_prompt_logprobs: 0,
        type: 'sample',
      }),
    })
  // Submitted all at once: exactly QUEUE_LIMIT are accepted, the rest are told to slow down.
  const answers = await Promise.all(Array.from({ length: QUEUE_LIMIT + 5 }, (_, i) => post(i)))
  const statuses = answers.map((r) => r.status)
  assert.equal(statuses.filter((s) => s === 200).length, QUEUE_LIMIT, statuses.join(','))
  assert.equal(statuses.filter((s) => s === 429).length, 5, statuses.join(','))
  const accepted: string[] = []
  for (const r of answers) {
    const body = (await r.json()) as { request_id?: string }
    if (r.status === 200) accepted.push(body.request_id!)
  }
  // Once they finish (the client polls them to the end), new requests are accepted again.
  for (const id of accepted) {
    for (;;) {
      const res = await fetch(`${server.baseUrl}/api/v1/retrieve_future`, {
        method: 'POST',
        headers: { 'x-api-key': USERS.ben, 'content-type': 'application/json' },
        body: JSON.stringify({ request_id: id }),
      })
      assert.equal(res.status, 200)
      const body = (await res.json()) as { type?: string; error?: string }
      if (body.type === 'try_again') continue
      assert.equal(body.error, undefined, JSON.stringify(body))
      break
    }
  }
  const later = await Promise.all(Array.from({ length: QUEUE_LIMIT }, (_, i) => post(100 + i)))
  assert.deepEqual(
    later.map((r) => r.status),
    Array(QUEUE_LIMIT).fill(200),
  )
  // The TS client rides out a 429 by backing off and resending the same seq_id.
  const fresh = await client.createSamplingClient({ baseModel: NATIVE_MODEL })
  const out = await fresh.sample(PROMPT, 1, { max_tokens: 4, temperature: 0 })
  assert.equal(out.sequences[0]!.tokens.length, 4)
})
