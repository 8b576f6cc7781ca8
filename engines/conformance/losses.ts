// The five Tinker losses as functions of an item and the target log-probabilities an engine returned
// for it (spec §6): the suite checks every engine's reported loss against these, and they reproduce the
// PyTorch reference fixtures' losses exactly.

import type { TrainItem } from '../../core/engine.js'

/** The datum's summed loss given its [N, K] target log-probabilities `lp`. */
export function expectedLoss(item: TrainItem, lp: ArrayLike<number>): number {
  const cfg = item.lossConfig
  let total = 0
  if (item.lossFn === 'cross_entropy') {
    for (let i = 0; i < lp.length; i++) total -= (item.weights?.[i] ?? 1) * lp[i]!
    return total
  }
  for (let i = 0; i < lp.length; i++) {
    const q = item.logprobs![i]!
    const a = item.advantages![i]!
    const r = Math.exp(lp[i]! - q)
    switch (item.lossFn) {
      case 'importance_sampling':
        total -= r * a
        break
      case 'ppo': {
        const lo = item.clipLow?.[i] ?? cfg.clip_low_threshold ?? 0.8
        const hi = item.clipHigh?.[i] ?? cfg.clip_high_threshold ?? 1.2
        total -= Math.min(r * a, Math.min(Math.max(r, lo), hi) * a)
        break
      }
      case 'cispo': {
        const lo = item.clipLow?.[i] ?? cfg.clip_low_threshold ?? 0
        const hi = item.clipHigh?.[i] ?? cfg.clip_high_threshold ?? 4
        total -= Math.min(Math.max(r, lo), hi) * lp[i]! * a
        break
      }
      case 'dro': {
        const beta = cfg.beta ?? 0.01
        total -= lp[i]! * a - 0.5 * beta * (lp[i]! - q) ** 2
        break
      }
    }
  }
  return total
}
