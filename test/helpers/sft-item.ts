// A supervised TrainItem for tests that call an engine directly: predict each next token of `seq`
// with cross-entropy, every position weighted 1.

import type { TrainItem } from '../../core/engine.js'

export function sftItem(adapterId: string, seq: number[], forwardOnly = false): TrainItem {
  return {
    adapterId,
    tokens: Int32Array.from(seq.slice(0, -1)),
    targets: Int32Array.from(seq.slice(1)),
    k: 1,
    lossFn: 'cross_entropy',
    lossConfig: {},
    weights: new Float32Array(seq.length - 1).fill(1),
    forwardOnly,
  }
}
