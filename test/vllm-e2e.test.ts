// Sampling through engines/vllm end to end, with real processes on loopback: a tuft server whose model
// trains on the native engine and samples through the `vllm` provider, which launches and supervises a
// second process — the vLLM stand-in, a tuft server speaking vLLM's API with runtime LoRA updating on.
// The TS client drives the SDK's flow: train, save_weights_and_get_sampling_client, sample greedy and
// seeded, prompt logprobs against the trainer's forward, stop strings and tokens, n > 1; then a kill -9
// of the vLLM side mid-request, and more users' adapters than max_loras.

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
const STAND_IN = new URL('./helpers/vllm-stand-in.ts', import.meta.url).pathname
const VLLM_KEY = 'tml-vllm-side-key'
const MAX_LORAS = 2

let server: NativeServer

before(async () => {
  server = await startNativeTuft({
    model: {
      max_loras: MAX_LORAS,
      sampling: {
        provider: 'vllm',
        options: {
          api_key: VLLM_KEY,
          launch: {
            command: [process.execPath, '--import', import.meta.resolve('tsx'), STAND_IN],
            max_restart_backoff_ms: 1000,
          },
          request_timeout_ms: 30_000,
        },
      },
    },
  })
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-3000))
})

/** The launched vLLM side, from the provider's log lines. */
function vllmSide(): { url: string; pid: number } {
  const lines = server.output().split('\n')
  const started = lines
    .filter((l) => l.includes('"vLLM server starting"'))
    .map((l) => JSON.parse(l) as { pid: number })
  const ready = lines.find((l) => l.includes('"vLLM sampling ready"'))
  return {
    url: (JSON.parse(ready!) as { servers: string[] }).servers[0]!,
    pid: started[started.length - 1]!.pid,
  }
}

async function trainedRun(apiKey: string, seed: number, data: Datum[], steps = 3): Promise<TrainingClient> {
  const run = await server.client(apiKey).createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed })
  for (let i = 0; i < steps; i++) {
    await run.forwardBackward(data, 'cross_entropy')
    await run.optimStep({ learning_rate: 0.01 })
  }
  return run
}

let ann: { run: TrainingClient; sampler: SamplingClient; seq: number[] } | undefined

test('the SDK flow through vLLM: save_weights_and_get_sampling_client, greedy and seeded, prompt logprobs', async () => {
  const seq = [...PROMPT, 12095, 13, 576, 6722, 315]
  const run = await trainedRun(USERS.ann, 5, [datumFromTokens(seq)])
  const sampler = await run.saveWeightsAndGetSamplingClient()
  ann = { run, sampler, seq }

  // Prompt logprobs (compute_logprobs) equal the trainer's forward pass for the same adapter.
  const fwd = forwardLogprobs(await run.forward([datumFromTokens(seq)], 'cross_entropy'))[0]!
  const lp = await sampler.computeLogprobs(seq)
  assert.equal(lp[0], null)
  for (let i = 1; i < seq.length; i++) assert.ok(Math.abs(lp[i]! - fwd[i - 1]!) <= 1e-4, `position ${i}`)

  // Greedy: each generated token is the top-1 of the distribution that produced it.
  const greedy = (await sampler.sample(PROMPT, 1, { max_tokens: 8, temperature: 0 })).sequences[0]!
  assert.equal(greedy.tokens.length, 8)
  assert.equal(greedy.stopReason, 'length')
  const scored = await sampler.sample(
    [...PROMPT, ...greedy.tokens],
    1,
    { max_tokens: 1, temperature: 0 },
    { topkPromptLogprobs: 1 },
  )
  const top1 = scored.topkPromptLogprobs!
  for (const [i, t] of greedy.tokens.entries()) {
    assert.equal(top1[PROMPT.length + i]![0]![0], t, `greedy token ${i}`)
    assert.ok(Math.abs(top1[PROMPT.length + i]![0]![1] - greedy.logprobs![i]!) < 1e-4)
  }

  // Seeded: the same seed draws the same n sequences, another seed others.
  const params = { max_tokens: 10, temperature: 1, seed: 1234 }
  const first = await sampler.sample(PROMPT, 3, params)
  const again = await sampler.sample(PROMPT, 3, params)
  assert.equal(first.sequences.length, 3)
  assert.deepEqual(
    again.sequences.map((s) => s.tokens),
    first.sequences.map((s) => s.tokens),
  )
  assert.notDeepEqual(first.sequences[0]!.tokens, first.sequences[1]!.tokens, 'n samples are independent')
  const other = await sampler.sample(PROMPT, 3, { ...params, seed: 99 })
  assert.notDeepEqual(
    other.sequences.map((s) => s.tokens),
    first.sequences.map((s) => s.tokens),
  )
})

test('stop token ids and stop strings end generation with "stop", the terminating token included', async () => {
  const { sampler } = ann!
  const params = { max_tokens: 24, temperature: 1, seed: 77 }
  const free = (await sampler.sample(PROMPT, 1, params)).sequences[0]!
  assert.equal(free.stopReason, 'length')
  const k = free.tokens.findIndex((t, i) => i >= 3 && !free.tokens.slice(0, i).includes(t))
  assert.ok(k > 0)
  const byId = (await sampler.sample(PROMPT, 1, { ...params, stop: [free.tokens[k]!] })).sequences[0]!
  assert.deepEqual([byId.tokens, byId.stopReason], [free.tokens.slice(0, k + 1), 'stop'])

  // A stop string: the text of tokens k-1..k, which first appears in the output there.
  const bytes = await tokenBytes()
  const decoder = new TextDecoder()
  const text = decoder.decode(Buffer.concat(free.tokens.slice(0, k + 1).map((t) => bytes(t))))
  const piece = decoder.decode(Buffer.concat([bytes(free.tokens[k]!)]))
  const end = text.indexOf(piece)
  assert.ok(piece.length > 0 && !piece.includes('\uFFFD') && end >= 0)
  const byText = (await sampler.sample(PROMPT, 1, { ...params, stop: [piece] })).sequences[0]!
  assert.equal(byText.stopReason, 'stop')
  const upTo = decoder.decode(Buffer.concat(byText.tokens.map((t) => bytes(t))))
  assert.ok(upTo.endsWith(piece) || upTo.includes(piece), `stops once "${piece}" is out: ${upTo}`)
  assert.ok(byText.tokens.length <= k + 1)
})

test('kill -9 of the vLLM side mid-request: a clear retryable failure, then the adapter is reloaded', async () => {
  const { sampler } = ann!
  const before = (await sampler.sample(PROMPT, 1, { max_tokens: 6, temperature: 0 })).sequences[0]!.tokens
  const { pid } = vllmSide()
  const long = sampler.sample(PROMPT, 16, { max_tokens: 1500, temperature: 1, seed: 5 })
  await new Promise((r) => setTimeout(r, 300))
  process.kill(pid, 'SIGKILL')
  const failure = await long.then(
    () => null,
    (err: Error) => err,
  )
  assert.ok(failure, 'the request in flight fails')
  assert.match(failure.message, /vLLM server http:\/\/127\.0\.0\.1:\d+ is unreachable .*retry shortly/)
  assert.equal((failure as { category?: string }).category, 'server', 'retryable: a server-side failure')

  // The provider restarts it; the first sample after that reloads the adapter (it forgot it) and answers.
  const deadline = Date.now() + 60_000
  while (!server.output().includes('"vLLM server is back"')) {
    assert.ok(Date.now() < deadline, 'vLLM was not restarted')
    await new Promise((r) => setTimeout(r, 200))
  }
  assert.notEqual(vllmSide().pid, pid)
  const after = (await sampler.sample(PROMPT, 1, { max_tokens: 6, temperature: 0 })).sequences[0]!.tokens
  assert.deepEqual(after, before)
})

test("more users' adapters than max_loras: least recently used are unloaded and reloaded", async () => {
  const users = Object.values(USERS)
  const samplers = await Promise.all(
    users.map(async (key, u) => {
      const run = await trainedRun(
        key,
        20 + u,
        [datumFromTokens([...PROMPT, 1000 + 37 * u, 2000 + 53 * u, 13])],
        2,
      )
      return run.saveWeightsAndGetSamplingClient()
    }),
  )
  const { url } = vllmSide()
  const loadedOnVllm = async () => {
    const res = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${VLLM_KEY}` } })
    return ((await res.json()) as { data: { parent: string | null }[] }).data.filter((m) => m.parent !== null)
      .length
  }
  const round = async () => {
    const out: number[][] = []
    for (const s of samplers) {
      out.push(
        Array.from((await s.sample(PROMPT, 1, { max_tokens: 6, temperature: 0 })).sequences[0]!.logprobs!),
      )
      const loaded = await loadedOnVllm()
      // 4 adapters used in turn, never more than max_loras loaded: the others were unloaded (and reloaded).
      assert.ok(loaded >= 1 && loaded <= MAX_LORAS, `${loaded} adapters loaded on the vLLM side`)
    }
    return out
  }
  const first = await round()
  const second = await round()
  for (const [u, lps] of second.entries()) {
    for (const [i, lp] of lps.entries())
      assert.ok(Math.abs(lp - first[u]![i]!) < 1e-5, `user ${u}, token ${i}`)
  }
  assert.equal(
    new Set(first.map((l) => JSON.stringify(l))).size,
    users.length,
    'each adapter answers its own',
  )
})
