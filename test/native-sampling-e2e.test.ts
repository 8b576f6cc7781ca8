// Sampling end to end on the native engine: the real `tuft` process serving the embedded tiny Qwen3
// model, through HTTP with the TypeScript client. Seeds reproduce, stop token ids and stop strings end
// generation with "stop" (terminating token included) and max_tokens with "length", prompt logprobs
// equal the training forward pass, and 32 concurrent requests over 4 users' adapters each answer
// exactly what the same request answers alone.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Datum, datumFromTokens, type SamplingClient, type TrainingClient } from '../client/index.js'
import {
  forwardLogprobs,
  NATIVE_MODEL,
  type NativeServer,
  startNativeTuft,
  tokenBytes,
  USERS,
} from './helpers/native-server.js'

const PROMPT = [785, 6722, 315, 9625, 374]
const decoder = new TextDecoder('utf-8', { fatal: true })

let server: NativeServer

before(async () => {
  server = await startNativeTuft()
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-2000))
})

/** A LoRA run trained a few steps on `data`, so its adapter differs from the base model and others. */
async function trainedRun(apiKey: string, seed: number, data: Datum[], steps = 3): Promise<TrainingClient> {
  const run = await server.client(apiKey).createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed })
  for (let i = 0; i < steps; i++) {
    await run.forwardBackward(data, 'cross_entropy')
    await run.optimStep({ learning_rate: 0.01 })
  }
  return run
}

test('the same seed draws the same tokens, other seeds draw others; max_tokens ends with "length"', async () => {
  const sampler = await server.client(USERS.ann).createSamplingClient({ baseModel: NATIVE_MODEL })
  const params = { max_tokens: 12, temperature: 1, seed: 1234 }
  const first = await sampler.sample(PROMPT, 2, params)
  const again = await sampler.sample(PROMPT, 2, params)
  // Each request has its own sequence ids (SDK ≥ 0.26); what was drawn is the same.
  const drawn = (r: typeof first) => r.sequences.map((s) => ({ ...s, sequenceId: undefined }))
  assert.deepEqual(drawn(again), drawn(first))
  for (const s of first.sequences) {
    assert.equal(s.tokens.length, 12)
    assert.equal(s.stopReason, 'length')
    assert.equal(s.logprobs?.length, 12)
    assert.ok(s.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp)))
  }
  assert.notDeepEqual(first.sequences[0]!.tokens, first.sequences[1]!.tokens, 'samples are independent')
  for (const seed of [1235, 99]) {
    const other = await sampler.sample(PROMPT, 2, { ...params, seed })
    assert.notDeepEqual(
      other.sequences.map((s) => s.tokens),
      first.sequences.map((s) => s.tokens),
      `seed ${seed}`,
    )
  }
})

test('stop token ids and stop strings end generation with "stop", the terminating token included', async () => {
  const sampler = await server.client(USERS.ann).createSamplingClient({ baseModel: NATIVE_MODEL })
  const params = { max_tokens: 24, temperature: 1, seed: 77 }
  const free = (await sampler.sample(PROMPT, 1, params)).sequences[0]!
  assert.equal(free.stopReason, 'length')
  const tokens = free.tokens

  // Stop token id: the first position whose token has not appeared before, past the first token.
  const k = tokens.findIndex((t, i) => i >= 3 && !tokens.slice(0, i).includes(t))
  assert.ok(k > 0, `no fresh token in ${tokens}`)
  const byId = (await sampler.sample(PROMPT, 1, { ...params, stop: [tokens[k]!] })).sequences[0]!
  assert.deepEqual(byId.tokens, tokens.slice(0, k + 1))
  assert.equal(byId.stopReason, 'stop')
  assert.deepEqual(byId.logprobs, free.logprobs!.slice(0, k + 1))

  // Stop string: a token's text; generation ends on the token whose bytes complete its first occurrence.
  const bytesOf = await tokenBytes()
  const prefixBytes = (n: number) => Buffer.concat(tokens.slice(0, n).map((t) => bytesOf(t)))
  let stop: { text: string; end: number } | undefined
  for (let i = 2; i < tokens.length - 1 && !stop; i++) {
    let text: string
    try {
      text = decoder.decode(bytesOf(tokens[i]!))
    } catch {
      continue // not a whole UTF-8 string on its own
    }
    if (text.trim().length === 0) continue
    const needle = Buffer.from(text)
    const end = tokens.findIndex((_, n) => prefixBytes(n + 1).includes(needle))
    if (end < tokens.length - 1) stop = { text, end }
  }
  assert.ok(stop, `no usable stop string in ${tokens}`)
  const byText = (await sampler.sample(PROMPT, 1, { ...params, stop: [stop.text] })).sequences[0]!
  assert.deepEqual(byText.tokens, tokens.slice(0, stop.end + 1), `stop string ${JSON.stringify(stop.text)}`)
  assert.equal(byText.stopReason, 'stop')
  // A bare string is one stop string (spec §5.7), not a list of characters.
  const bare = (await sampler.sample(PROMPT, 1, { ...params, stop: stop.text })).sequences[0]!
  assert.deepEqual(bare.tokens, byText.tokens)
})

test('prompt logprobs (compute_logprobs) equal the logprobs forward returns for the same adapter', async () => {
  const seq = [...PROMPT, 12095, 13, 576, 6722, 315, 17689, 374, 19846, 13]
  const run = await trainedRun(USERS.ben, 5, [datumFromTokens(seq)])
  const fwd = forwardLogprobs(await run.forward([datumFromTokens(seq)], 'cross_entropy'))[0]!
  const base = await server.client(USERS.ben).createSamplingClient({ baseModel: NATIVE_MODEL })
  const samplers: Array<[string, SamplingClient]> = [
    ['snapshot', await run.saveWeightsAndGetSamplingClient()],
    ['checkpoint', await run.createSamplingClient(await run.saveWeightsForSampler('lp'))],
  ]
  const baseLp = await base.computeLogprobs(seq)
  for (const [what, sampler] of samplers) {
    const lp = await sampler.computeLogprobs(seq)
    assert.equal(lp.length, seq.length)
    assert.equal(lp[0], null)
    let differsFromBase = false
    for (let i = 1; i < seq.length; i++) {
      const diff = Math.abs(lp[i]! - fwd[i - 1]!)
      assert.ok(diff <= 1e-5, `${what}: position ${i}: sampler ${lp[i]} vs forward ${fwd[i - 1]}`)
      if (Math.abs(lp[i]! - baseLp[i]!) > 1e-3) differsFromBase = true
    }
    assert.ok(differsFromBase, `${what}: the trained adapter is in use, not the base model`)
  }
})

/** One differently trained adapter per user: half from checkpoints on disk, half in-memory snapshots. */
let userAdapters: Promise<SamplingClient[]> | undefined
function userSamplers(): Promise<SamplingClient[]> {
  userAdapters ??= Promise.all(
    Object.values(USERS).map(async (key, u) => {
      const seq = [...PROMPT, 1000 + 37 * u, 2000 + 53 * u, 3000 + 71 * u, 13]
      const run = await trainedRun(key, 20 + u, [datumFromTokens(seq)], 2)
      return u % 2 === 0
        ? run.createSamplingClient(await run.saveWeightsForSampler(`user-${u}`))
        : run.saveWeightsAndGetSamplingClient()
    }),
  )
  return userAdapters
}

test("32 concurrent sample requests over 4 users' adapters each answer what they answer alone", async () => {
  const users = Object.values(USERS)
  const samplers = await userSamplers()
  const requests = users.flatMap((_, u) =>
    Array.from({ length: 8 }, (_, i) => ({
      u,
      i,
      prompt: PROMPT.slice(0, 2 + (i % 4)),
      // Greedy: batched with other rows the engine sums in another order (logprobs differ in the
      // last float32 bits), which may move a random draw across a neighbouring id; argmax stays.
      params: { max_tokens: 6 + (i % 3), temperature: 0, seed: 100 + i },
      numSamples: 1 + (i % 2),
    })),
  )
  assert.equal(requests.length, 32)
  const together = await Promise.all(
    requests.map((r) => samplers[r.u]!.sample(r.prompt, r.numSamples, r.params)),
  )
  for (const [n, r] of requests.entries()) {
    const alone = await samplers[r.u]!.sample(r.prompt, r.numSamples, r.params)
    const got = together[n]!.sequences
    const what = `request ${n} (user ${r.u})`
    assert.deepEqual(
      got.map((s) => [s.tokens, s.stopReason]),
      alone.sequences.map((s) => [s.tokens, s.stopReason]),
      what,
    )
    // Batched with others, the engine sums in another order: logprobs agree to float32 rounding.
    for (const [j, s] of alone.sequences.entries()) {
      for (const [i, lp] of s.logprobs!.entries()) {
        assert.ok(Math.abs(got[j]!.logprobs![i]! - lp) < 1e-4, `${what}: logprob ${i}`)
      }
    }
  }
  // The four adapters really differ, so a request served with another user's adapter would show.
  const same = requests.filter((r) => r.i === 0)
  assert.equal(same.length, 4)
  const answers = same.map((r) => JSON.stringify(together[requests.indexOf(r)]!.sequences[0]!.logprobs))
  assert.equal(new Set(answers).size, 4, "each user's adapter answers differently")
})

test("a seeded top-k draw is the same batched with other adapters' requests or alone", async () => {
  // One request per user's adapter: mixed adapters change the engine's row grouping, hence rounding.
  const samplers = await userSamplers()
  const params = { max_tokens: 6, temperature: 1, top_k: 8, seed: 100 }
  const prompt = PROMPT.slice(0, 2)
  const together = await Promise.all(samplers.map((s) => s.sample(prompt, 1, params)))
  for (const [u, s] of samplers.entries()) {
    const alone = await s.sample(prompt, 1, params)
    assert.deepEqual(together[u]!.sequences[0]!.tokens, alone.sequences[0]!.tokens, `user ${u}`)
  }
})
