// End to end on the native engine: the real `tuft` process serving the embedded tiny Qwen3 model,
// driven through HTTP by the TypeScript client. Supervised LoRA training learns a small fact set (loss
// falls by 90%+, greedy sampling recalls every fact, the base model does not); one RL step with
// importance_sampling or ppo moves sampled tokens' logprobs the way their advantages say; and a run
// restored from save_state (weights, or weights and optimizer) is bit-for-bit the run it was saved from.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type Datum, datumFromTokens, makeDatum, type TrainingClient } from '../client/index.js'
import {
  forwardLogprobs,
  NATIVE_MODEL,
  type NativeServer,
  startNativeTuft,
  USERS,
} from './helpers/native-server.js'

/** Short "facts": a 3-token prompt (all distinct) and the 3-token continuation to learn. */
const FACTS: Array<{ prompt: number[]; answer: number[] }> = [
  { prompt: [785, 6722, 315], answer: [9625, 374, 12095] }, // "The capital of France is Paris"
  { prompt: [3838, 1558, 264], answer: [8251, 1977, 30] },
  { prompt: [40, 1075, 311], answer: [6559, 21358, 13] },
  { prompt: [17, 488, 220], answer: [17, 284, 220] },
  { prompt: [9707, 11, 1879], answer: [0, 576, 374] },
  { prompt: [23085, 525, 279], answer: [2518, 323, 6303] },
]
const STEPS = 50

let server: NativeServer

before(async () => {
  server = await startNativeTuft()
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-2000))
})

/** The SFT datum of a fact: only the answer tokens are trained. */
function factDatum(f: { prompt: number[]; answer: number[] }): Datum {
  const tokens = [...f.prompt, ...f.answer]
  return datumFromTokens(
    tokens,
    tokens.map((_, i) => (i < f.prompt.length ? 0 : 1)),
  )
}

async function loss(run: TrainingClient, data: Datum[]): Promise<number> {
  return (await run.forward(data, 'cross_entropy')).metrics['loss:sum']!
}

test('supervised LoRA training learns a fact set that the base model does not know', async () => {
  const client = server.client(USERS.ann)
  const run = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 3 })
  const data = FACTS.map(factDatum)
  const initial = await loss(run, data)
  assert.ok(Number.isFinite(initial) && initial > 0, `initial loss ${initial}`)
  const losses: number[] = []
  for (let step = 0; step < STEPS; step++) {
    const fb = await run.forwardBackward(data, 'cross_entropy')
    losses.push(fb.metrics['loss:sum']!)
    await run.optimStep({ learning_rate: 0.01 })
    // Done once the loss is a hundredth of what it was (well past the 90% asked for).
    if (losses.at(-1)! < initial * 0.01) break
  }
  assert.equal(losses[0], initial, 'the first forward_backward sees the untrained weights forward saw')
  const final = await loss(run, data)
  assert.ok(final <= initial * 0.1, `loss fell from ${initial} to ${final} in ${losses.length} steps`)

  const trained = await run.saveWeightsAndGetSamplingClient()
  const base = await client.createSamplingClient({ baseModel: NATIVE_MODEL })
  let baseKnows = 0
  for (const f of FACTS) {
    const params = { max_tokens: f.answer.length, temperature: 0, seed: 1 }
    const got = (await trained.sample(f.prompt, 1, params)).sequences[0]!
    assert.deepEqual(got.tokens, f.answer, `the trained adapter recalls the fact after ${f.prompt}`)
    assert.equal(got.stopReason, 'length')
    const fromBase = (await base.sample(f.prompt, 1, params)).sequences[0]!
    if (fromBase.tokens.join() === f.answer.join()) baseKnows++
  }
  assert.equal(baseKnows, 0, 'the base model recalls none of the facts')
})

/** RL data: one sequence sampled per prompt; every sampled token of a sequence gets its advantage. */
async function rlBatch(run: TrainingClient, sampleSeed: number) {
  const sampler = await run.saveWeightsAndGetSamplingClient()
  const prompts = [
    { prompt: [9707, 11, 1879], advantage: 1 },
    { prompt: [40, 1075, 311], advantage: -1 },
  ]
  const rl: Datum[] = []
  const ce: Datum[] = []
  const advantages: number[][] = []
  for (const { prompt, advantage } of prompts) {
    const seq = (await sampler.sample(prompt, 1, { max_tokens: 6, temperature: 1, seed: sampleSeed }))
      .sequences[0]!
    assert.ok(seq.logprobs && seq.logprobs.length === seq.tokens.length)
    const full = [...prompt, ...seq.tokens]
    const n = full.length - 1
    const adv = new Float32Array(n)
    const q = new Float32Array(n)
    for (let i = 0; i < seq.tokens.length; i++) {
      adv[prompt.length - 1 + i] = advantage
      q[prompt.length - 1 + i] = seq.logprobs[i]!
    }
    advantages.push(Array.from(adv))
    rl.push(
      makeDatum(full.slice(0, -1), {
        target_tokens: Int32Array.from(full.slice(1)),
        logprobs: q,
        advantages: adv,
      }),
    )
    ce.push(datumFromTokens(full))
  }
  return { rl, ce, advantages }
}

for (const lossFn of ['importance_sampling', 'ppo'] as const) {
  test(`an RL step with ${lossFn} moves sampled tokens' logprobs the way their advantages point`, async () => {
    const client = server.client(USERS.ben)
    for (const seed of [1, 2]) {
      const run = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed })
      const { rl, ce, advantages } = await rlBatch(run, 7 + seed)
      const before = forwardLogprobs(await run.forward(ce, 'cross_entropy'))
      const fb = await run.forwardBackward(rl, lossFn)
      assert.ok(Number.isFinite(fb.metrics['loss:sum']), JSON.stringify(fb.metrics))
      // The sampler's logprobs are the trained weights' own: every ratio starts at 1.
      for (const [j, out] of fb.outputs.entries()) {
        const lp = Array.from(out.logprobs!.data)
        for (const [i, a] of advantages[j]!.entries()) {
          if (a !== 0) assert.ok(Math.abs(lp[i]! - before[j]![i]!) < 1e-5, `forward_backward logprob ${i}`)
        }
      }
      await run.optimStep({ learning_rate: 1e-4 })
      const after = forwardLogprobs(await run.forward(ce, 'cross_entropy'))
      for (const [j, adv] of advantages.entries()) {
        const sign = adv.find((a) => a !== 0)!
        let total = 0
        let checked = 0
        for (const [i, a] of adv.entries()) {
          if (a === 0) continue
          const moved = after[j]![i]! - before[j]![i]!
          total += moved
          // A token the model already samples with probability ~1 has (almost) no gradient to follow.
          if (before[j]![i]! < -0.3) {
            checked++
            assert.equal(Math.sign(moved), a, `seed ${seed}, sequence ${j}, position ${i}: moved ${moved}`)
          }
        }
        assert.ok(checked > 0, `seed ${seed}, sequence ${j}: no unsaturated sampled token`)
        assert.equal(Math.sign(total), sign, `seed ${seed}, sequence ${j}: total logprob moved ${total}`)
      }
    }
  })
}

function sameBits(a: number[][], b: number[][], what: string): void {
  assert.equal(a.length, b.length, what)
  for (const [i, row] of a.entries()) {
    assert.deepEqual(
      Buffer.from(Float32Array.from(row).buffer),
      Buffer.from(Float32Array.from(b[i]!).buffer),
      `${what}: datum ${i}`,
    )
  }
}

test('a run restored from save_state is bit-for-bit the run it was saved from', async () => {
  const client = server.client(USERS.cat)
  const data = FACTS.slice(0, 3).map(factDatum)
  const probe = FACTS.map(factDatum)
  const step = async (run: TrainingClient) => {
    const fb = await run.forwardBackward(data, 'cross_entropy')
    await run.optimStep({ learning_rate: 0.005 })
    return forwardLogprobs(fb)
  }
  const original = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 11 })
  for (let i = 0; i < 3; i++) await step(original)
  const path = await original.saveState('resume-me')
  const saved = forwardLogprobs(await original.forward(probe, 'cross_entropy'))

  const weightsOnly = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 99 })
  await weightsOnly.loadState(path)
  const withOptimizer = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 98 })
  await withOptimizer.loadStateWithOptimizer(path)
  sameBits(forwardLogprobs(await weightsOnly.forward(probe, 'cross_entropy')), saved, 'load_state')
  sameBits(
    forwardLogprobs(await withOptimizer.forward(probe, 'cross_entropy')),
    saved,
    'load_state_with_optimizer',
  )

  // One more identical step each: with the optimizer state restored, the runs stay identical.
  sameBits(await step(withOptimizer), await step(original), 'the next forward_backward')
  const next = forwardLogprobs(await original.forward(probe, 'cross_entropy'))
  sameBits(forwardLogprobs(await withOptimizer.forward(probe, 'cross_entropy')), next, 'after the next step')

  // Weights only: the optimizer starts afresh, so the next step differs from the original's, yet it
  // is exactly the step any run restored the same way takes.
  const twin = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 8, seed: 97 })
  await twin.loadState(path)
  sameBits(await step(weightsOnly), await step(twin), 'the next forward_backward (weights only)')
  const fresh = forwardLogprobs(await weightsOnly.forward(probe, 'cross_entropy'))
  sameBits(
    forwardLogprobs(await twin.forward(probe, 'cross_entropy')),
    fresh,
    'after the next step (weights only)',
  )
  assert.notDeepEqual(fresh, next, 'a fresh optimizer takes a different step than the restored one')
})
