// The model: a bigram language model over the served model's vocabulary. The frozen base is a seeded
// V x V logit table; a LoRA adapter adds (alpha / r) · B · A to it, with A [r, V] (Kaiming-uniform
// from the adapter's seed) and B [V, r] (zero, so a new adapter changes nothing), exactly as PEFT
// adapts a linear layer whose input is the previous token's one-hot vector.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/** A small seeded generator (mulberry32): the same seed gives the same numbers everywhere. */
export function random(seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The base table for the vocabulary in the model directory's config.json. */
export function loadBase(modelPath, seed) {
  const config = JSON.parse(readFileSync(join(modelPath, 'config.json'), 'utf8'))
  const vocab = config.vocab_size
  const rand = random(seed)
  const table = Float32Array.from({ length: vocab * vocab }, () => (rand() - 0.5) * 4)
  return { vocab, table }
}

/** A fresh adapter's weights: A Kaiming-uniform (bound 1 / sqrt(fan_in)), B zero. */
export function initialWeights(vocab, rank, seed) {
  const rand = random(seed)
  const bound = 1 / Math.sqrt(vocab)
  const a = Float32Array.from({ length: rank * vocab }, () => (2 * rand() - 1) * bound)
  return { a, b: new Float32Array(vocab * rank) }
}

/**
 * Log-probabilities of the next token after `prev`, into `out` (length V). `lora` is null for the base
 * model; `h` (length r) receives A's column for `prev`, which backward needs.
 */
export function logSoftmaxAfter(base, lora, prev, out, h) {
  const v = base.vocab
  for (let j = 0; j < v; j++) out[j] = base.table[prev * v + j]
  if (lora) {
    const { a, b, rank, scale } = lora
    for (let k = 0; k < rank; k++) h[k] = a[k * v + prev]
    for (let j = 0; j < v; j++) {
      let dot = 0
      for (let k = 0; k < rank; k++) dot += b[j * rank + k] * h[k]
      out[j] += scale * dot
    }
  }
  let max = -Infinity
  for (let j = 0; j < v; j++) if (out[j] > max) max = out[j]
  let sum = 0
  for (let j = 0; j < v; j++) sum += Math.exp(out[j] - max)
  const lse = max + Math.log(sum)
  for (let j = 0; j < v; j++) out[j] -= lse
}

/**
 * Adds the gradient of one position to (ga, gb), given d loss / d logits `g` and the position's `h`:
 * dB[j, k] += s · g[j] · h[k] and dA[k, prev] += s · Σ_j B[j, k] · g[j].
 */
export function accumulate(lora, grads, prev, g, h) {
  const { b, rank, scale, vocab } = lora
  for (let k = 0; k < rank; k++) {
    let back = 0
    for (let j = 0; j < vocab; j++) {
      grads.b[j * rank + k] += scale * g[j] * h[k]
      back += b[j * rank + k] * g[j]
    }
    grads.a[k * vocab + prev] += scale * back
  }
}

/**
 * One AdamW step over the adapter's parameters (decoupled weight decay, global-norm clipping, bias
 * correction by step count); returns the gradient norm before clipping.
 */
export function adamw(params, grads, m, s, step, adam) {
  let sq = 0
  for (const g of grads) for (const x of g) sq += x * x
  const norm = Math.sqrt(sq)
  const clip = adam.gradClipNorm > 0 && norm > adam.gradClipNorm ? adam.gradClipNorm / norm : 1
  const bc1 = 1 - adam.beta1 ** step
  const bc2 = 1 - adam.beta2 ** step
  for (let t = 0; t < params.length; t++) {
    const p = params[t]
    for (let i = 0; i < p.length; i++) {
      const g = grads[t][i] * clip
      m[t][i] = adam.beta1 * m[t][i] + (1 - adam.beta1) * g
      s[t][i] = adam.beta2 * s[t][i] + (1 - adam.beta2) * g * g
      p[i] = p[i] * (1 - adam.learningRate * adam.weightDecay)
      p[i] -= (adam.learningRate * (m[t][i] / bc1)) / (Math.sqrt(s[t][i] / bc2) + adam.eps)
    }
    grads[t].fill(0)
  }
  return norm
}
