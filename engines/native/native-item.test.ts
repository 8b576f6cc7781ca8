// Input validation of the native provider (no addon needed): every bad input is a TUFT_BAD_REQUEST
// naming the datum and field; good inputs translate to the binding's form with loss defaults.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SampleJob, TrainItem } from '../../core/engine.js'
import { sampleJob } from '../../test/helpers/sample-job.js'
import { chunkByTokens } from './training.js'
import { checkAdam, checkLora, checkSampleJob, type Limits, toNativeItem } from './validate.js'

const limits: Limits = { vocabSize: 100, maxContext: 16, maxLoraRank: 8 }

function item(over: Partial<TrainItem> = {}): TrainItem {
  return {
    adapterId: 'a',
    tokens: Int32Array.from([1, 2, 3]),
    targets: Int32Array.from([2, 3, 4]),
    k: 1,
    lossFn: 'cross_entropy',
    lossConfig: {},
    forwardOnly: false,
    ...over,
  }
}

const job = (over: Partial<SampleJob> = {}) => sampleJob([1, 2], { maxTokens: 4, temperature: 1, ...over })

const badRequest = (pattern: RegExp) => ({ code: 'TUFT_BAD_REQUEST', message: pattern })

describe('native input validation', () => {
  it('fills cross-entropy weights with ones and checks ids, lengths and NaN', () => {
    assert.deepEqual([...(toNativeItem(item(), 0, limits).weights ?? [])], [1, 1, 1])
    assert.throws(
      () => toNativeItem(item({ tokens: Int32Array.from([1, 100, 3]) }), 2, limits),
      badRequest(/datum 2: model_input\[1\] = 100/),
    )
    assert.throws(
      () => toNativeItem(item({ targets: Int32Array.from([2, -1, 4]) }), 0, limits),
      badRequest(/target_tokens\[1\]/),
    )
    assert.throws(
      () => toNativeItem(item({ targets: Int32Array.from([2, 3]) }), 0, limits),
      badRequest(/expected 3 x 1/),
    )
    assert.throws(
      () => toNativeItem(item({ tokens: new Int32Array(17), targets: new Int32Array(17) }), 0, limits),
      badRequest(/context of 16/),
    )
    assert.throws(
      () => toNativeItem(item({ tokens: new Int32Array(0), targets: new Int32Array(0) }), 0, limits),
      badRequest(/empty/),
    )
    const nan = Float32Array.from([1, Number.NaN, 1])
    assert.throws(
      () => toNativeItem(item({ weights: nan }), 0, limits),
      badRequest(/weights\[1\] is not a finite/),
    )
  })

  it('requires logprobs and advantages for RL losses and applies the config defaults', () => {
    assert.throws(() => toNativeItem(item({ lossFn: 'ppo' }), 0, limits), badRequest(/requires logprobs/))
    const rl = { logprobs: Float32Array.from([-1, -1, -1]), advantages: Float32Array.from([1, 0, -1]) }
    const ppo = toNativeItem(item({ lossFn: 'ppo', ...rl }), 0, limits)
    assert.deepEqual([ppo.clipLowThreshold, ppo.clipHighThreshold, ppo.weights], [0.8, 1.2, undefined])
    const cispo = toNativeItem(
      item({ lossFn: 'cispo', ...rl, lossConfig: { clip_high_threshold: 5 } }),
      0,
      limits,
    )
    assert.deepEqual([cispo.clipLowThreshold, cispo.clipHighThreshold], [0, 5])
    assert.equal(toNativeItem(item({ lossFn: 'dro', ...rl }), 0, limits).beta, 0.01)
    assert.throws(
      () => toNativeItem(item({ lossFn: 'ppo', ...rl, clipLow: Float32Array.from([0.9]) }), 0, limits),
      badRequest(/clip_low_threshold has 1 values/),
    )
  })

  it('checks LoRA, Adam and sampling parameters', () => {
    const lora = { rank: 4, alpha: 8, seed: 1, trainAttn: true, trainMlp: true, trainUnembed: false }
    checkLora(lora, limits)
    assert.throws(
      () => checkLora({ ...lora, rank: 16 }, limits),
      badRequest(/exceeds the maximum LoRA rank 8/),
    )
    const adam = { learningRate: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, gradClipNorm: 0 }
    checkAdam(adam)
    assert.throws(() => checkAdam({ ...adam, learningRate: Number.NaN }), badRequest(/learningRate/))
    checkSampleJob(job(), limits)
    assert.throws(
      () => checkSampleJob(job({ maxTokens: 15 }), limits),
      badRequest(/exceed the model's context/),
    )
    assert.throws(() => checkSampleJob(job({ topP: 0 }), limits), badRequest(/top_p/))
    assert.throws(() => checkSampleJob(job({ stopTokens: [100] }), limits), badRequest(/stop token/))
  })

  it('splits batches by token budget, keeping order', () => {
    const t = (n: number) => ({ tokens: new Int32Array(n) })
    const chunks = chunkByTokens([t(3), t(3), t(5), t(1), t(9)], 6)
    assert.deepEqual(
      chunks.map((c) => c.map((x) => x.tokens.length)),
      [[3, 3], [5, 1], [9]],
    )
  })
})
