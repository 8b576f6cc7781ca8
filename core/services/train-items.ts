// Checks a decoded forward_backward request against the model (spec §5.1-5.4) and turns its datums
// into engine TrainItems. Everything is verified here, before any engine call, so one user's bad input
// can never fail a fused call that also carries other users' work.

import { LOSS_FNS, type LossFn, type TrainItem } from '../engine.js'
import { tuftError } from '../errors.js'
import type { Datum, ForwardBackwardRequest, WireTensor } from '../wire/proto.js'

/** loss_fn_config defaults (spec §5.4: official values, not TuFT's). */
const LOSS_DEFAULTS: Record<LossFn, Record<string, number>> = {
  cross_entropy: {},
  importance_sampling: {},
  ppo: { clip_low_threshold: 0.8, clip_high_threshold: 1.2 },
  cispo: { clip_low_threshold: 0, clip_high_threshold: 4 },
  dro: { beta: 0.01 },
}

/**
 * Every key some built-in loss reads (spec §5.3). A loss ignores the ones it does not use (clients send
 * e.g. zero `logprobs` and `advantages` with cross_entropy data); keys no loss knows are refused.
 */
const KNOWN_KEYS = [
  'target_tokens',
  'weights',
  'logprobs',
  'advantages',
  'clip_low_threshold',
  'clip_high_threshold',
]

export interface ModelLimits {
  vocabSize: number
  maxContext: number
  /** The losses the training engine declares; absent when replaying steps it accepted before. */
  losses?: readonly LossFn[]
}

function bad(message: string): Error {
  return tuftError('TUFT_BAD_REQUEST', message)
}

export function isLossFn(name: string): name is LossFn {
  return (LOSS_FNS as readonly string[]).includes(name)
}

function inputTokens(d: Datum, where: string, limits: ModelLimits): Int32Array {
  let n = 0
  for (const [j, c] of d.chunks.entries()) {
    if (c.type !== 'encoded_text') {
      throw bad(
        `${where}.model_input[${j}]: ${c.type} chunks are not supported; this server serves text-only models`,
      )
    }
    n += c.tokens.length
  }
  if (n === 0) throw bad(`${where}.model_input is empty`)
  if (n > limits.maxContext)
    throw bad(`${where}: ${n} tokens exceed the model's context of ${limits.maxContext}`)
  const tokens = new Int32Array(n)
  let at = 0
  for (const c of d.chunks) {
    if (c.type === 'encoded_text') {
      tokens.set(c.tokens, at)
      at += c.tokens.length
    }
  }
  checkTokenIds(tokens, `${where}.model_input`, limits.vocabSize)
  return tokens
}

export function checkTokenIds(ids: ArrayLike<number>, where: string, vocabSize: number): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i]!
    if (!(t >= 0 && t < vocabSize))
      throw bad(`${where}: token id ${t} at position ${i} is outside the vocabulary [0, ${vocabSize})`)
  }
}

/** The tensor's dense shape; an empty shape means 1-D. */
function shapeOf(t: WireTensor): number[] {
  return t.shape.length === 0 ? [t.data.length] : t.shape
}

function floats(t: WireTensor | undefined, where: string, shape: number[]): Float32Array {
  if (!t) throw bad(`${where} is required`)
  if (t.dtype !== 'float32' && t.dtype !== 'bfloat16') throw bad(`${where} must be float32, got ${t.dtype}`)
  const got = shapeOf(t)
  if (got.join(',') !== shape.join(',')) throw bad(`${where} has shape [${got}], expected [${shape}]`)
  const data = t.data as Float32Array
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw bad(`${where} holds a non-finite value (${data[i]}) at index ${i}`)
  }
  return data
}

function toItem(
  d: Datum,
  index: number,
  req: ForwardBackwardRequest,
  lossFn: LossFn,
  adapterId: string,
  limits: ModelLimits,
  lossConfig: Record<string, number>,
): TrainItem {
  const where = `data[${index}]`
  const tokens = inputTokens(d, where, limits)
  const n = tokens.length
  for (const key of Object.keys(d.lossFnInputs)) {
    if (!KNOWN_KEYS.includes(key)) {
      throw bad(
        `${where}.loss_fn_inputs has unknown key '${key}' (the built-in losses know: ${KNOWN_KEYS.join(', ')})`,
      )
    }
  }
  const target = d.lossFnInputs.target_tokens
  if (!target) throw bad(`${where}.loss_fn_inputs is missing 'target_tokens'`)
  if (target.dtype !== 'int64' && target.dtype !== 'int32') {
    throw bad(`${where}.loss_fn_inputs['target_tokens'] must be int64, got ${target.dtype}`)
  }
  const tshape = shapeOf(target)
  if (tshape[0] !== n || tshape.length > 2 || (tshape.length === 2 && tshape[1]! < 1)) {
    throw bad(
      `${where}.loss_fn_inputs['target_tokens'] has shape [${tshape}], expected [${n}] or [${n}, K] (model_input has ${n} tokens)`,
    )
  }
  const k = tshape.length === 2 ? tshape[1]! : 1
  if (lossFn !== 'cross_entropy' && k !== 1) {
    throw bad(`${where}.loss_fn_inputs['target_tokens'] must be 1-D for loss_fn '${lossFn}'`)
  }
  const targets = target.data as Int32Array
  checkTokenIds(targets, `${where}.loss_fn_inputs['target_tokens']`, limits.vocabSize)
  const key = (name: string) => `${where}.loss_fn_inputs['${name}']`
  const item: TrainItem = { adapterId, tokens, targets, k, lossFn, lossConfig, forwardOnly: req.forwardOnly }
  if (lossFn === 'cross_entropy') {
    // Inputs of the other losses (logprobs, advantages, clip thresholds) are ignored, unchecked.
    item.weights = floats(d.lossFnInputs.weights, key('weights'), tshape)
    return item
  }
  item.logprobs = floats(d.lossFnInputs.logprobs, key('logprobs'), [n])
  item.advantages = floats(d.lossFnInputs.advantages, key('advantages'), [n])
  if (d.lossFnInputs.weights) floats(d.lossFnInputs.weights, key('weights'), [n])
  if (lossFn !== 'ppo' && lossFn !== 'cispo') return item
  if (d.lossFnInputs.clip_low_threshold)
    item.clipLow = floats(d.lossFnInputs.clip_low_threshold, key('clip_low_threshold'), [n])
  if (d.lossFnInputs.clip_high_threshold)
    item.clipHigh = floats(d.lossFnInputs.clip_high_threshold, key('clip_high_threshold'), [n])
  return item
}

/** Validated engine items for one forward_backward request (400 on the first problem found). */
export function toTrainItems(
  req: ForwardBackwardRequest,
  adapterId: string,
  limits: ModelLimits,
): TrainItem[] {
  if (!isLossFn(req.lossFn)) throw bad(`Unknown loss_fn '${req.lossFn}'. Supported: ${LOSS_FNS.join(', ')}`)
  const lossFn = req.lossFn
  if (limits.losses && !limits.losses.includes(lossFn))
    throw bad(
      `loss_fn '${lossFn}' is not supported by this model's engine. Supported: ${limits.losses.join(', ')}`,
    )
  const lossConfig: Record<string, number> = { ...LOSS_DEFAULTS[lossFn] }
  for (const [name, value] of Object.entries(req.lossFnConfig)) {
    if (!Number.isFinite(value)) throw bad(`loss_fn_config['${name}'] must be a finite number`)
    lossConfig[name] = value
  }
  return req.data.map((d, i) => toItem(d, i, req, lossFn, adapterId, limits, lossConfig))
}
