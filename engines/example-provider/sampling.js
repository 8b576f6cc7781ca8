// The sampling engine: PEFT adapters loaded from the URI core hands over, seeded sampling with
// temperature / top-k / top-p and stop tokens, prompt log-probabilities, cancellation. Its staging
// hook copies an adapter into the engine's own directory before it is loaded, as an engine on another
// host would fetch it to its disk (a remote engine would upload or download here instead).

import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { localDir, tuftError } from 'tuft/engine'
import { logSoftmaxAfter, random } from './bigram.js'
import { bad, checkJob } from './checks.js'
import { readPeft } from './peft.js'

/** Generated tokens between yields to the event loop, so that an abort can land mid-request. */
const YIELD_EVERY = 64

export class BigramSampling {
  #base
  #loaded = new Map()
  #closed = false
  #cache

  constructor(base, ctx, maxContext) {
    this.#base = base
    this.#cache = mkdtemp(join(tmpdir(), 'tuft-bigram-adapters-'))
    this.info = {
      device: 'cpu (javascript)',
      vocabSize: base.vocab,
      maxContext,
      maxLoraRank: ctx.maxLoraRank,
      arch: 'bigram',
    }
    this.staging = {
      stage: async (id, dir) => {
        const copy = join(await this.#cache, encodeURIComponent(id))
        await cp(dir, copy, { recursive: true })
        return pathToFileURL(copy).href
      },
      release: async (_id, uri) => rm(localDir(uri), { recursive: true, force: true }),
    }
  }

  async loadAdapter(ref) {
    this.#open()
    if (ref.kind !== 'peft') throw bad(`this engine loads PEFT files, not ${ref.kind} adapters`)
    const peft = readPeft(localDir(ref.uri), this.#base.vocab)
    if (peft.rank > this.info.maxLoraRank) throw bad(`rank ${peft.rank} exceeds ${this.info.maxLoraRank}`)
    this.#loaded.set(ref.id, { ...peft, scale: peft.alpha / peft.rank })
  }

  async unloadAdapter(ref) {
    this.#loaded.delete(ref.id)
  }

  async sample(job) {
    this.#open()
    const lora = job.adapter === null ? null : this.#loaded.get(job.adapter.id)
    if (lora === undefined) throw tuftError('TUFT_NOT_FOUND', `adapter ${job.adapter.id} is not loaded`)
    checkJob(job, this.info)
    const cancelled = () => tuftError('TUFT_UNAVAILABLE', 'the sample request was cancelled')
    if (job.signal?.aborted) throw cancelled()
    const v = this.#base.vocab
    const logp = new Float64Array(v)
    const h = new Float64Array(lora?.rank ?? 0)
    const sequences = []
    for (let n = 0; n < job.numSamples; n++) {
      const rand = random(Number(BigInt.asUintN(32, job.seed)) + n * 7919)
      const tokens = []
      const logprobs = []
      let stopReason = 'length'
      let prev = job.prompt[job.prompt.length - 1]
      while (tokens.length < job.maxTokens) {
        if (tokens.length % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((r) => setImmediate(r))
        if (job.signal?.aborted) throw cancelled()
        logSoftmaxAfter(this.#base, lora, prev, logp, h)
        const next = choose(logp, job, rand)
        tokens.push(next)
        logprobs.push(logp[next])
        prev = next
        if (job.stopTokens.includes(next)) {
          stopReason = 'stop'
          break
        }
      }
      sequences.push({ tokens: Int32Array.from(tokens), logprobs: Float32Array.from(logprobs), stopReason })
    }
    const result = { sequences }
    if (job.promptLogprobs || job.topkPromptLogprobs > 0) Object.assign(result, this.#scorePrompt(job, lora))
    return result
  }

  async health() {
    return this.#closed ? { ok: false, message: 'closed' } : { ok: true }
  }

  async close() {
    if (this.#closed) return
    this.#closed = true
    this.#loaded.clear()
    await rm(await this.#cache, { recursive: true, force: true })
  }

  #open() {
    if (this.#closed) throw tuftError('TUFT_UNAVAILABLE', 'the bigram sampling engine was closed')
  }

  /** Each prompt token's log-probability after its predecessor, and the K likeliest alternatives. */
  #scorePrompt(job, lora) {
    const p = job.prompt.length
    const k = job.topkPromptLogprobs
    const logp = new Float64Array(this.#base.vocab)
    const h = new Float64Array(lora?.rank ?? 0)
    const promptLogprobs = new Float32Array(p).fill(Number.NaN)
    const tokenIds = new Int32Array(p * k)
    const topLogprobs = new Float32Array(p * k).fill(-99999)
    for (let i = 1; i < p; i++) {
      logSoftmaxAfter(this.#base, lora, job.prompt[i - 1], logp, h)
      promptLogprobs[i] = logp[job.prompt[i]]
      const best = [...logp.keys()].sort((x, y) => logp[y] - logp[x]).slice(0, k)
      best.forEach((tok, c) => {
        tokenIds[i * k + c] = tok
        topLogprobs[i * k + c] = logp[tok]
      })
    }
    const out = {}
    if (job.promptLogprobs) out.promptLogprobs = promptLogprobs
    if (k > 0) out.topkPromptLogprobs = { tokenIds, logprobs: topLogprobs, k, promptLength: p }
    return out
  }
}

/** Greedy at temperature 0; otherwise a draw from the top-k / top-p part of the tempered distribution. */
function choose(logp, job, rand) {
  if (job.temperature === 0) {
    let best = 0
    for (let j = 1; j < logp.length; j++) if (logp[j] > logp[best]) best = j
    return best
  }
  let order = [...logp.keys()].sort((x, y) => logp[y] - logp[x])
  if (job.topK > 0) order = order.slice(0, job.topK)
  const weights = order.map((j) => Math.exp((logp[j] - logp[order[0]]) / job.temperature))
  const total = weights.reduce((a, b) => a + b, 0)
  let kept = order.length
  if (job.topP < 1) {
    let mass = 0
    kept = 0
    while (kept < order.length && mass < job.topP * total) mass += weights[kept++]
  }
  let u = rand() * weights.slice(0, kept).reduce((a, b) => a + b, 0)
  for (let c = 0; c < kept; c++) {
    u -= weights[c]
    if (u <= 0) return order[c]
  }
  return order[kept - 1]
}
