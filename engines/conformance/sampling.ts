// Conformance of a SamplingEngine on the base model: result shapes, seeded determinism (alone and
// among concurrent requests), stop tokens, prompt log-probabilities, bad requests (coded 4xx, no harm
// to concurrent ones) and cancellation.

import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { SampleResult, SamplingEngine } from '../../core/engine.js'
import { isTuftError } from '../../core/errors.js'
import {
  assertClose,
  assertLogprobs,
  openSampling,
  rejectsCoded,
  sampleJob,
  scratchDir,
  type Target,
  tokens,
  uid,
} from './harness.js'

/** Same tokens, log-probabilities within `tol`. */
function assertSameSamples(actual: SampleResult, want: SampleResult, tol: number, what: string): void {
  assert.equal(actual.sequences.length, want.sequences.length, `${what}: number of sequences`)
  for (const [i, s] of actual.sequences.entries()) {
    const w = want.sequences[i]!
    assert.deepEqual([...s.tokens], [...w.tokens], `${what}: tokens of sequence ${i}`)
    assertClose(s.logprobs, w.logprobs, tol, `${what}: logprobs of sequence ${i}`)
    assert.equal(s.stopReason, w.stopReason, `${what}: stop reason of sequence ${i}`)
  }
}

export function samplingSuite(t: Target): void {
  describe('sampling engine', () => {
    let s: SamplingEngine
    let v: number
    const scratch = scratchDir()
    const prompt = (n: number, salt: number) => tokens(n, salt, v)

    before(async () => {
      s = await openSampling(t)
      v = s.info.vocabSize
    })
    after(async () => {
      await s?.close()
      rmSync(scratch, { recursive: true, force: true })
    })

    it('reports what it serves (info)', () => {
      assert.ok(Number.isInteger(s.info.vocabSize) && s.info.vocabSize >= 2, `vocabSize ${s.info.vocabSize}`)
      assert.ok(
        Number.isInteger(s.info.maxContext) && s.info.maxContext >= 16,
        `maxContext ${s.info.maxContext}`,
      )
      assert.ok(s.info.device.length > 0, 'device names where it runs')
    })

    it('answers numSamples sequences of at most maxTokens tokens with their log-probabilities', async () => {
      const r = await s.sample(
        sampleJob(prompt(5, 1), { numSamples: 3, maxTokens: 7, temperature: 1, seed: 11n }),
      )
      assert.equal(r.sequences.length, 3)
      for (const [i, seq] of r.sequences.entries()) {
        assert.ok(
          seq.tokens instanceof Int32Array && seq.logprobs instanceof Float32Array,
          `sequence ${i} types`,
        )
        assert.equal(seq.tokens.length, 7, `sequence ${i}: no stop was asked, so maxTokens tokens`)
        assert.equal(seq.logprobs.length, seq.tokens.length, `sequence ${i}: one logprob per token`)
        assert.equal(seq.stopReason, 'length')
        for (const tok of seq.tokens)
          assert.ok(tok >= 0 && tok < v, `sequence ${i}: token ${tok} in the vocabulary`)
        assertLogprobs(seq.logprobs, `sequence ${i} logprobs`)
      }
      const none = await s.sample(sampleJob(prompt(3, 2), { maxTokens: 0 }))
      assert.equal(none.sequences[0]!.tokens.length, 0, 'maxTokens 0 samples nothing')
    })

    it('samples deterministically for a seed, alone and among concurrent requests', async () => {
      const job = sampleJob(prompt(6, 3), { numSamples: 2, maxTokens: 8, temperature: 1, seed: 1234n })
      const first = await s.sample(job)
      assertSameSamples(await s.sample(job), first, 1e-6, 'the same seeded request again')
      // Greedy, so that the comparison is exact even where batch composition moves the last bits of a logit.
      const greedy = sampleJob(prompt(4, 4), { maxTokens: 8 })
      const alone = await s.sample(greedy)
      const crowd = await Promise.all([
        s.sample(greedy),
        s.sample(sampleJob(prompt(9, 5), { numSamples: 3, maxTokens: 12, temperature: 1, seed: 5n })),
        s.sample({ ...greedy, seed: 99n }),
      ])
      assertSameSamples(crowd[0], alone, 1e-4, 'greedy among concurrent requests')
      assertSameSamples(crowd[2], alone, 1e-4, 'greedy with another seed')
    })

    it('ends a sequence at a stop token, with stopReason "stop"', async () => {
      const free = await s.sample(sampleJob(prompt(5, 6), { maxTokens: 6 }))
      const tokensFree = [...free.sequences[0]!.tokens]
      const stop = tokensFree[2]!
      const end = tokensFree.indexOf(stop) + 1
      const stopped = await s.sample(sampleJob(prompt(5, 6), { maxTokens: 6, stopTokens: [stop] }))
      const seq = stopped.sequences[0]!
      assert.deepEqual(
        [...seq.tokens],
        tokensFree.slice(0, end),
        'the tokens up to and including the stop token',
      )
      assert.equal(seq.stopReason, 'stop')
    })

    it('reports prompt log-probabilities and top-K prompt log-probabilities', async () => {
      const p = prompt(7, 7)
      const k = 3
      const r = await s.sample(sampleJob(p, { maxTokens: 1, promptLogprobs: true, topkPromptLogprobs: k }))
      const plp = r.promptLogprobs
      assert.ok(plp instanceof Float32Array && plp.length === p.length, 'one prompt logprob per prompt token')
      assert.ok(Number.isNaN(plp[0]), 'the first prompt token has no logprob (NaN)')
      assertLogprobs(plp.slice(1), 'prompt logprobs')
      const top = r.topkPromptLogprobs
      assert.ok(top !== undefined, 'top-K prompt logprobs were asked for')
      assert.equal(top.k, k)
      assert.equal(top.promptLength, p.length)
      assert.equal(top.tokenIds.length, p.length * k)
      assert.equal(top.logprobs.length, p.length * k)
      for (let i = 1; i < p.length; i++) {
        const row = top.logprobs.slice(i * k, (i + 1) * k)
        assertLogprobs(row, `top-K row ${i}`)
        for (let c = 1; c < k; c++) assert.ok(row[c]! <= row[c - 1]!, `top-K row ${i} is best first`)
        assert.ok(plp[i]! <= row[0]! + 1e-4, `row ${i}: the prompt token is not likelier than the best`)
      }
      const topOnly = await s.sample(sampleJob(p, { maxTokens: 1, topkPromptLogprobs: k }))
      assert.ok(topOnly.topkPromptLogprobs !== undefined, 'top-K prompt logprobs without promptLogprobs')
    })

    it('rejects bad requests with a coded 4xx error, leaving concurrent requests as they were', async () => {
      const good = sampleJob(prompt(5, 8), { maxTokens: 8 })
      const want = await s.sample(good)
      const p = prompt(4, 9)
      const bad: [string, ReturnType<typeof sampleJob>][] = [
        ['a token id = vocabSize', sampleJob(Int32Array.from([1, v, 2]))],
        ['a negative token id', sampleJob(Int32Array.from([1, -3, 2]))],
        ['an empty prompt', sampleJob(new Int32Array(0))],
        ['numSamples 0', sampleJob(p, { numSamples: 0 })],
        ['a negative maxTokens', sampleJob(p, { maxTokens: -1 })],
        ['a negative temperature', sampleJob(p, { temperature: -1 })],
        ['topP 0', sampleJob(p, { topP: 0 })],
        ['an adapter never loaded', sampleJob(p, { adapter: { kind: 'snapshot', id: uid('never-loaded') } })],
      ]
      for (const [what, job] of bad) {
        const [, beside] = await Promise.all([
          rejectsCoded(s.sample(job), `sample with ${what}`),
          s.sample(good),
        ])
        assertSameSamples(beside, want, 1e-4, `a request beside one with ${what}`)
      }
      await rejectsCoded(
        s.loadAdapter({
          kind: 'peft',
          id: uid('missing'),
          uri: new URL(`file://${join(scratch, 'missing')}`).href,
        }),
        'loadAdapter of a missing directory',
        false,
      )
    })

    it('drops cancelled requests; the others carry on', async () => {
      const aborted = new AbortController()
      aborted.abort()
      await rejectsCoded(
        s.sample(sampleJob(prompt(4, 10), { signal: aborted.signal })),
        'an already aborted request',
        false,
      )

      const good = sampleJob(prompt(5, 11), { maxTokens: 8 })
      const want = await s.sample(good)
      const abort = new AbortController()
      const maxTokens = Math.min(4096, s.info.maxContext - 4)
      const long = s.sample(
        sampleJob(prompt(4, 12), { maxTokens, temperature: 1, seed: 3n, signal: abort.signal }),
      )
      const beside = s.sample(good)
      setTimeout(() => abort.abort(), 5)
      const started = Date.now()
      // Either outcome is allowed (it may finish before the abort lands), but it settles and is coded.
      const outcome = await long.then(
        () => null,
        (err: unknown) => err,
      )
      if (outcome !== null)
        assert.ok(isTuftError(outcome), `cancellation rejects with a TuftError: ${String(outcome)}`)
      assert.ok(Date.now() - started < 30_000, 'a cancelled request settles promptly')
      assertSameSamples(await beside, want, 1e-4, 'a request beside a cancelled one')
      assertSameSamples(await s.sample(good), want, 1e-4, 'a request after a cancelled one')
    })
  })
}
