// The engine double is a real learner: its gradients for all five Tinker losses match finite
// differences of its loss, gradients accumulate until optim_step, and AdamW lowers the loss.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { pino } from 'pino'
import type { LossFn, TrainItem } from '../core/engine.js'
import { createEngineDouble, type DoubleTraining } from './helpers/engine-double.js'

const V = 8
const LORA = { rank: 4, alpha: 32, seed: 1, trainAttn: true, trainMlp: true, trainUnembed: true }
const ADAM = { learningRate: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-12, weightDecay: 0, gradClipNorm: 0 }

async function engine(): Promise<DoubleTraining> {
  const provider = createEngineDouble()
  const ctx = {
    modelName: 'm',
    modelPath: '/x',
    maxModelLen: 64,
    maxLoraRank: 8,
    maxLoras: 32,
    maxBatchTokens: 16384,
    log: pino({ level: 'silent' }),
  }
  return (await provider.createTraining!(
    { vocab_size: V, max_context: 64, seed: 3, step_delay_ms: 0, load_delay_ms: 0 },
    ctx,
  )) as DoubleTraining
}

function item(lossFn: LossFn, forwardOnly: boolean, k = 1): TrainItem {
  const tokens = Int32Array.from([1, 2, 3, 1])
  const n = tokens.length
  const targets = Int32Array.from({ length: n * k }, (_, i) => (i * 3 + 2) % V)
  const base: TrainItem = { adapterId: 'a', tokens, targets, k, lossFn, lossConfig: {}, forwardOnly }
  if (lossFn === 'cross_entropy')
    return { ...base, weights: Float32Array.from({ length: n * k }, (_, i) => 0.5 + (i % 3) * 0.7 - 0.6) }
  return {
    ...base,
    logprobs: Float32Array.from([-2.1, -1.9, -2.3, -2.0]),
    advantages: Float32Array.from([1, -0.5, 2, 0.3]),
    lossConfig:
      lossFn === 'ppo'
        ? { clip_low_threshold: 0.8, clip_high_threshold: 1.2 }
        : lossFn === 'cispo'
          ? { clip_low_threshold: 0, clip_high_threshold: 4 }
          : lossFn === 'dro'
            ? { beta: 0.1 }
            : {},
  }
}

const cases: [LossFn, number][] = [
  ['cross_entropy', 1],
  ['cross_entropy', 2],
  ['importance_sampling', 1],
  ['ppo', 1],
  ['dro', 1],
]

for (const [lossFn, k] of cases) {
  test(`${lossFn}${k > 1 ? ' (top-K targets)' : ''}: gradient matches finite differences`, async () => {
    const e = await engine()
    await e.createAdapter('a', LORA)
    // Move off the zero delta so ratios differ from 1 and PPO clipping is exercised.
    for (let i = 0; i < V * V; i++) e.perturb('a', i, Math.sin(i) * 0.3)
    const loss = async () => (await e.forwardBackward([item(lossFn, true, k)]))[0]!.loss
    await e.forwardBackward([item(lossFn, false, k)])
    const grad = e.gradient('a')
    const h = 1e-3
    for (const index of [1 * V + 2, 2 * V + 5, 3 * V + 0, 1 * V + 7]) {
      e.perturb('a', index, h)
      const up = await loss()
      e.perturb('a', index, -2 * h)
      const down = await loss()
      e.perturb('a', index, h)
      const numeric = (up - down) / (2 * h)
      assert.ok(
        Math.abs(numeric - grad[index]!) < 2e-3 * Math.max(1, Math.abs(numeric)),
        `${lossFn}[${index}]: analytic ${grad[index]} vs numeric ${numeric}`,
      )
    }
  })
}

test('cispo: gradient is the clipped ratio times the advantage (ratio held constant)', async () => {
  const e = await engine()
  await e.createAdapter('a', LORA)
  const it = item('cispo', false)
  const [out] = await e.forwardBackward([it])
  const grad = e.gradient('a')
  // Row of token 3 is used once (position 2): d L / d logit_j = -clip(r) A (onehot - p).
  const lp = out!.logprobs[2]!
  const r = Math.exp(lp - it.logprobs![2]!)
  const c = Math.min(Math.max(r, 0), 4)
  const target = it.targets[2]!
  assert.ok(Math.abs(grad[3 * V + target]! - -c * it.advantages![2]! * (1 - Math.exp(lp))) < 1e-4)
})

test('gradients accumulate across calls until optim_step, and AdamW lowers the loss', async () => {
  const e = await engine()
  await e.createAdapter('a', LORA)
  await e.forwardBackward([item('cross_entropy', false)])
  const once = e.gradient('a')
  await e.forwardBackward([item('cross_entropy', false)])
  const twice = e.gradient('a')
  for (let i = 0; i < once.length; i++) assert.ok(Math.abs(twice[i]! - 2 * once[i]!) < 1e-5)
  const before = (await e.forwardBackward([item('cross_entropy', true)]))[0]!.loss
  const step = await e.optimStep('a', ADAM)
  assert.equal(step.step, 1)
  assert.ok(step.gradNorm > 0)
  assert.ok(
    e.gradient('a').every((g) => g === 0),
    'optim_step zeroes the gradients',
  )
  const after = (await e.forwardBackward([item('cross_entropy', true)]))[0]!.loss
  assert.ok(after < before, `loss ${before} → ${after}`)
})
