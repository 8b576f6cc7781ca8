// The native provider's translation of TrainItems (no addon needed): cross-entropy weights default to
// ones, loss_fn_config scalars pass through as core resolved them, and batches split by token budget.
// Bad input is refused by the engine itself (C); native.tiny.test.ts checks that through the addon.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { TrainItem } from '../../core/engine.js'
import { toNativeItem } from './native-item.js'
import { chunkByTokens } from './training.js'

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

describe('native item translation', () => {
  it('fills cross-entropy weights with ones, for every target column', () => {
    assert.deepEqual([...(toNativeItem(item()).weights ?? [])], [1, 1, 1])
    const topk = item({ k: 2, targets: new Int32Array(6) })
    assert.deepEqual([...(toNativeItem(topk).weights ?? [])], [1, 1, 1, 1, 1, 1])
    const given = Float32Array.from([0, 1, 0.5])
    assert.equal(toNativeItem(item({ weights: given })).weights, given)
  })

  it('passes RL inputs and the resolved loss_fn_config through, without weights', () => {
    const rl = { logprobs: Float32Array.from([-1, -1, -1]), advantages: Float32Array.from([1, 0, -1]) }
    const lossConfig = { clip_low_threshold: 0.9, clip_high_threshold: 1.1 }
    const ppo = toNativeItem(item({ lossFn: 'ppo', ...rl, lossConfig }))
    assert.deepEqual([ppo.clipLowThreshold, ppo.clipHighThreshold, ppo.beta], [0.9, 1.1, 0])
    assert.equal(ppo.weights, undefined)
    assert.equal(ppo.logprobs, rl.logprobs)
    assert.equal(toNativeItem(item({ lossFn: 'dro', ...rl, lossConfig: { beta: 0.05 } })).beta, 0.05)
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
