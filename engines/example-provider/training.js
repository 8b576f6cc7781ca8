// The training engine: adapters, fused forward/backward over items of any adapters, AdamW, training
// checkpoints (PEFT files + optimizer.safetensors) and PEFT export. No in-memory snapshots: the
// provider declares snapshots: 'peft-files', so core exports adapters for its samplers.

import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { tuftError } from 'tuft/engine'
import { accumulate, adamw, initialWeights, logSoftmaxAfter } from './bigram.js'
import { bad, checkAdam, checkItem } from './checks.js'
import { manifest, readPeft, readSafetensors, writePeft, writeSafetensors } from './peft.js'

export class BigramTraining {
  #base
  #adapters = new Map()
  #closed = false

  constructor(base, ctx, maxContext) {
    this.#base = base
    this.info = {
      device: 'cpu (javascript)',
      vocabSize: base.vocab,
      maxContext,
      maxLoraRank: ctx.maxLoraRank,
      arch: 'bigram',
    }
  }

  async createAdapter(id, lora) {
    if (!Number.isInteger(lora.rank) || lora.rank < 1 || lora.rank > this.info.maxLoraRank)
      throw bad(`rank ${lora.rank} is outside [1, ${this.info.maxLoraRank}]`)
    if (this.#live().has(id)) throw bad(`adapter ${id} already exists`)
    const v = this.#base.vocab
    const { a, b } = initialWeights(v, lora.rank, lora.seed)
    this.#adapters.set(id, {
      rank: lora.rank,
      alpha: lora.alpha,
      scale: lora.alpha / lora.rank,
      vocab: v,
      a,
      b,
      grads: { a: new Float32Array(a.length), b: new Float32Array(b.length) },
      moments: fresh(a.length, b.length),
      step: 0,
    })
  }

  async dropAdapter(id) {
    this.#live().delete(id)
  }

  async forwardBackward(items) {
    for (const [i, item] of items.entries()) {
      this.#adapter(item.adapterId)
      checkItem(item, i, this.info)
    }
    const v = this.#base.vocab
    const logp = new Float64Array(v)
    const g = new Float64Array(v)
    return items.map((item) => {
      const lora = this.#adapter(item.adapterId)
      const h = new Float64Array(lora.rank)
      const n = item.tokens.length
      const logprobs = new Float32Array(n * item.k)
      let loss = 0
      for (let i = 0; i < n; i++) {
        const prev = item.tokens[i]
        logSoftmaxAfter(this.#base, lora, prev, logp, h)
        g.fill(0)
        let total = 0
        for (let k = 0; k < item.k; k++) {
          const target = item.targets[i * item.k + k]
          const lp = logp[target]
          logprobs[i * item.k + k] = lp
          // d loss / d logprob of this target.
          let dl
          if (item.lossFn === 'cross_entropy') {
            const w = item.weights ? item.weights[i * item.k + k] : 1
            loss -= w * lp
            dl = -w
          } else {
            const ratio = Math.exp(lp - item.logprobs[i])
            loss -= ratio * item.advantages[i]
            dl = -ratio * item.advantages[i]
          }
          g[target] += dl
          total += dl
        }
        if (item.forwardOnly || total === 0) continue
        // d logprob_t / d logit_j = [j = t] - p_j
        for (let j = 0; j < v; j++) g[j] -= total * Math.exp(logp[j])
        accumulate(lora, lora.grads, prev, g, h)
      }
      return { logprobs, loss }
    })
  }

  async optimStep(id, adam) {
    const lora = this.#adapter(id)
    checkAdam(adam)
    lora.step += 1
    const m = lora.moments
    const gradNorm = adamw([lora.a, lora.b], [lora.grads.a, lora.grads.b], m.m, m.s, lora.step, adam)
    return { gradNorm, step: lora.step }
  }

  async saveState(id, dir, opts) {
    const lora = this.#adapter(id)
    const written = writePeft(dir, lora)
    if (!opts.optimizer) return written
    const [[ma, mb], [sa, sb]] = [lora.moments.m, lora.moments.s]
    const v = lora.vocab
    writeSafetensors(
      join(dir, 'optimizer.safetensors'),
      {
        'lora_A.exp_avg': { shape: [lora.rank, v], data: ma },
        'lora_B.exp_avg': { shape: [v, lora.rank], data: mb },
        'lora_A.exp_avg_sq': { shape: [lora.rank, v], data: sa },
        'lora_B.exp_avg_sq': { shape: [v, lora.rank], data: sb },
      },
      { step: String(lora.step) },
    )
    return manifest(dir, [...written.files.map((f) => f.name), 'optimizer.safetensors'])
  }

  /** Accepts what saveState wrote or, without the optimizer, any PEFT export of the same rank. */
  async loadState(id, dir, opts) {
    const lora = this.#adapter(id)
    const peft = readPeft(dir, lora.vocab)
    if (peft.rank !== lora.rank) throw bad(`${dir} holds a rank-${peft.rank} adapter, not rank ${lora.rank}`)
    let moments = fresh(lora.a.length, lora.b.length)
    let step = 0
    if (opts.optimizer) {
      const file = join(dir, 'optimizer.safetensors')
      if (!existsSync(file)) throw bad(`${dir} holds no optimizer state`)
      const { tensors, metadata } = readSafetensors(file)
      const t = (name) => tensors[name]?.data ?? new Float32Array(0)
      moments = {
        m: [t('lora_A.exp_avg'), t('lora_B.exp_avg')],
        s: [t('lora_A.exp_avg_sq'), t('lora_B.exp_avg_sq')],
      }
      step = Number(metadata.step)
    }
    Object.assign(lora, {
      a: peft.a,
      b: peft.b,
      alpha: peft.alpha,
      scale: peft.alpha / peft.rank,
      moments,
      step,
    })
    lora.grads.a.fill(0)
    lora.grads.b.fill(0)
  }

  async exportAdapter(id, dir) {
    mkdirSync(dir, { recursive: true })
    return writePeft(dir, this.#adapter(id))
  }

  async health() {
    return this.#closed ? { ok: false, message: 'closed' } : { ok: true }
  }

  async close() {
    this.#closed = true
    this.#adapters.clear()
  }

  #live() {
    if (this.#closed) throw tuftError('TUFT_UNAVAILABLE', 'the bigram training engine was closed')
    return this.#adapters
  }

  #adapter(id) {
    const lora = this.#live().get(id)
    if (!lora) throw tuftError('TUFT_NOT_FOUND', `unknown adapter ${id}`)
    return lora
  }
}

/** Zero Adam moments for A and B. */
function fresh(sizeA, sizeB) {
  return {
    m: [new Float32Array(sizeA), new Float32Array(sizeB)],
    s: [new Float32Array(sizeA), new Float32Array(sizeB)],
  }
}
