// A TrainItem in the binding's form. Nothing is checked here: the wire boundary (core) checked the
// request, and the engine checks every item again in C before it touches any state (the binding
// checks the array lengths the C ABI takes on trust), so bad input is a TUFT_BAD_REQUEST either way.
import type { TrainItem } from '../../core/engine.js'
import type { NativeTrainItem } from './binding.js'

export function toNativeItem(item: TrainItem): NativeTrainItem {
  const out: NativeTrainItem = {
    adapterId: item.adapterId,
    tokens: item.tokens,
    targets: item.targets,
    k: item.k,
    lossFn: item.lossFn,
    clipLowThreshold: item.lossConfig.clip_low_threshold ?? 0,
    clipHighThreshold: item.lossConfig.clip_high_threshold ?? 0,
    beta: item.lossConfig.beta ?? 0,
    forwardOnly: item.forwardOnly,
  }
  if (item.lossFn === 'cross_entropy') {
    // A datum without weights trains on every position, the usual SFT default.
    out.weights = item.weights ?? new Float32Array(item.tokens.length * item.k).fill(1)
    return out
  }
  // RL losses take the sampler's logprobs and advantages; weights do not apply.
  if (item.logprobs !== undefined) out.logprobs = item.logprobs
  if (item.advantages !== undefined) out.advantages = item.advantages
  if (item.clipLow !== undefined) out.clipLow = item.clipLow
  if (item.clipHigh !== undefined) out.clipHigh = item.clipHigh
  return out
}
