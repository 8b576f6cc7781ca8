// Fair sharing between users on the native engine and the embedded tiny model (issue 17): slicing a
// large forward_backward gives the results of running it whole (losses, logprobs, the weights after
// optim_step, within fp summation order); over HTTP, another user's small step finishes before a large
// backlog drains, and another user's sample request is accepted and served during a sampling flood.

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { datumFromTokens } from '../client/index.js'
import type { AdamParams, TrainingEngine } from '../core/engine.js'
import { TrainingScheduler } from '../core/services/scheduler.js'
import { createNativeProvider } from '../engines/native/index.js'
import {
  embeddedModelDir,
  NATIVE_MODEL,
  type NativeServer,
  startNativeTuft,
  USERS,
} from './helpers/native-server.js'
import { sftItem as sft } from './helpers/sft-item.js'

const ADAM: AdamParams = {
  learningRate: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0,
  gradClipNorm: 0,
}
const LORA = { rank: 8, alpha: 16, seed: 5, trainAttn: true, trainMlp: true, trainUnembed: true }

/** A datum of `n` deterministic tokens (distinct per `salt`). */
function tokens(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104_729 + 17) % 150_000)
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`)

describe('slicing on the native engine', () => {
  let training: TrainingEngine

  before(async () => {
    const ctx = {
      modelName: 'tiny',
      modelPath: await embeddedModelDir(),
      maxModelLen: 256,
      maxLoraRank: 16,
      maxLoras: 8,
      maxBatchTokens: 4096,
      log: pino({ level: 'silent' }),
    }
    training = await createNativeProvider().createTraining!({ threads: 2 }, ctx)
  })
  after(async () => {
    await training.close()
  })

  test('a forward_backward run in slices, beside another user, equals it run whole', async () => {
    const seqs = [17, 9, 24, 13, 30, 5].map((n, i) => tokens(n, i))
    await training.createAdapter('whole', LORA)
    await training.createAdapter('sliced', LORA)
    await training.createAdapter('other', { ...LORA, seed: 9 })
    const whole = await training.forwardBackward(seqs.map((s) => sft('whole', s)))

    // 32 tokens a call: alice's six datums take several calls, fused with bob's work.
    const scheduler = new TrainingScheduler({ modelName: 'tiny', engine: () => training, maxBatchTokens: 32 })
    const ran = { fused: false }
    const trace = (userId: string) => ({ requestId: userId, userId })
    const [sliced] = await Promise.all([
      scheduler.submit(
        'alice',
        seqs.map((s) => sft('sliced', s)),
        trace('alice'),
        ran,
      ),
      scheduler.submit('bob', [sft('other', tokens(12, 99))], trace('bob')),
    ])
    assert.equal(ran.fused, true)
    assert.equal(sliced.length, whole.length)
    for (const [i, r] of sliced.entries()) {
      close(r.loss, whole[i]!.loss, `datum ${i} loss`)
      for (const [t, lp] of r.logprobs.entries()) close(lp, whole[i]!.logprobs[t]!, `datum ${i} logprob ${t}`)
    }
    // The accumulated gradients are the same: so are the step and the weights it leaves.
    const [a, b] = [await training.optimStep('whole', ADAM), await training.optimStep('sliced', ADAM)]
    close(b.gradNorm, a.gradNorm, 'grad norm')
    const probe = seqs.map((s) => sft('whole', s, true))
    const after = await training.forwardBackward(probe)
    const afterSliced = await training.forwardBackward(probe.map((p) => ({ ...p, adapterId: 'sliced' })))
    for (const [i, r] of afterSliced.entries())
      close(r.loss, after[i]!.loss, `datum ${i} loss after the step`)
    assert.ok(after[0]!.loss !== whole[0]!.loss, 'the step moved the weights')
  })
})

describe('fair sharing over HTTP', () => {
  let server: NativeServer

  before(async () => {
    // A short long-poll, so that a poll tells at once whether a future is still running.
    server = await startNativeTuft({
      server: { max_batch_tokens: 64, sample_queue_limit: 8, long_poll_timeout_ms: 100 },
    })
  })
  after(async () => {
    assert.equal(await server.stop(), 0, server.output().slice(-2000))
  })

  test("another user's small step finishes before a large backlog drains", async () => {
    const ann = await server.client(USERS.ann).createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 1 })
    const ben = await server.client(USERS.ben).createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 2 })
    const finished: string[] = []
    // Ann: one request of 96 datums of 32 tokens (over 3000 tokens, at most 64 per engine call).
    const backlog = Array.from({ length: 96 }, (_, i) => datumFromTokens(tokens(33, i)))
    const annDone = ann.forwardBackward(backlog, 'cross_entropy').then((r) => {
      finished.push('ann backlog')
      return r
    })
    await new Promise((r) => setTimeout(r, 300))
    await ben.forwardBackward([datumFromTokens(tokens(17, 7))], 'cross_entropy')
    await ben.optimStep({ learning_rate: 1e-3 })
    finished.push('ben step')
    assert.equal((await annDone).outputs.length, 96)
    assert.deepEqual(finished, ['ben step', 'ann backlog'])
  })

  test("a sampling flood never turns another user's request into a 429", async () => {
    const annSampler = await server.client(USERS.ann).createSamplingClient({ baseModel: NATIVE_MODEL })
    const benSampler = await server.client(USERS.ben).createSamplingClient({ baseModel: NATIVE_MODEL })
    const post = (key: string, samplerId: string, seq: number, maxTokens: number) =>
      fetch(`${server.baseUrl}/api/v1/asample`, {
        method: 'POST',
        headers: {
          'x-api-key': key,
          'content-type': 'application/json',
          'X-Tinker-Sampling-Backpressure': '1',
        },
        body: JSON.stringify({
          sampling_session_id: samplerId,
          seq_id: seq,
          num_samples: 4,
          prompt: { chunks: [{ type: 'encoded_text', tokens: tokens(8, seq) }] },
          sampling_params: { max_tokens: maxTokens, temperature: 1, top_k: -1, top_p: 1, seed: seq },
          prompt_logprobs: false,
          topk_prompt_logprobs: 0,
          type: 'sample',
        }),
      })
    const flood = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post(USERS.ann, annSampler.samplerId, i, 400)),
    )
    const statuses = flood.map((r) => r.status)
    assert.equal(statuses.filter((s) => s === 200).length, 8, statuses.join(','))
    const ben = await post(USERS.ben, benSampler.samplerId, 1000, 4)
    assert.equal(ben.status, 200, await ben.clone().text())
    // The SDK's own path: Ben's greedy sample is served while Ann's flood is still running.
    const got = await benSampler.sample(tokens(4, 3), 1, { max_tokens: 8, temperature: 0, seed: 1 })
    assert.equal(got.sequences[0]!.tokens.length, 8)
    const futures = await Promise.all(flood.filter((r) => r.status === 200).map((r) => r.json()))
    const unfinished = await Promise.all(
      futures.map(async (f) => {
        const res = await fetch(`${server.baseUrl}/api/v1/retrieve_future`, {
          method: 'POST',
          headers: { 'x-api-key': USERS.ann, 'content-type': 'application/json' },
          body: JSON.stringify({ request_id: (f as { request_id: string }).request_id }),
        })
        return ((await res.json()) as { type?: string }).type === 'try_again'
      }),
    )
    assert.ok(
      unfinished.some((u) => u),
      "ben's sample finished while ann's flood still ran",
    )
  })
})
