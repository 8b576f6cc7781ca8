// Conformance of adapters travelling from training to sampling, the two ways core uses: PEFT files
// staged for the sampling engine (every provider with both roles: checkpoints reach samplers so), and
// in-memory snapshots where the provider declares it samples from them. Either way the sampler's
// log-probabilities equal training's forward for the weights the adapter had.

import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { AdapterRef, SamplingEngine, TrainingEngine } from '../../core/engine.js'
import {
  ADAM,
  assertClose,
  ceItem,
  forwardLogprobs,
  loadPeft,
  lora,
  openSampling,
  openTraining,
  rejectsCoded,
  sampleJob,
  scratchDir,
  type Target,
  tokens,
  uid,
  unloadPeft,
} from './harness.js'

export function adaptersSuite(t: Target): void {
  const caps = t.provider.capabilities
  describe('adapters from training to sampling', () => {
    let training: TrainingEngine
    let sampling: SamplingEngine
    let v: number
    const scratch = scratchDir()

    before(async () => {
      training = await openTraining(t)
      sampling = await openSampling(t)
      v = training.info.vocabSize
    })
    after(async () => {
      await training?.close()
      await sampling?.close()
      rmSync(scratch, { recursive: true, force: true })
    })

    /** A trained adapter (so that it differs from the base model). */
    const trained = async (salt: number): Promise<string> => {
      const id = uid('trained')
      await training.createAdapter(id, lora(Math.min(4, t.maxLoraRank), salt))
      for (let i = 0; i < 2; i++) {
        await training.forwardBackward([ceItem(id, tokens(8, salt + i, v), v)])
        await training.optimStep(id, { ...ADAM, learningRate: 0.05 })
      }
      return id
    }

    /** The sampler's prompt log-probabilities for `p` with `ref`, beside training's forward for `id`. */
    const compare = async (ref: AdapterRef, id: string, p: Int32Array, what: string) => {
      const r = await sampling.sample(sampleJob(p, { adapter: ref, maxTokens: 1, promptLogprobs: true }))
      const item = { ...ceItem(id, p.slice(0, -1), v), targets: p.slice(1), weights: undefined }
      const [forward] = await forwardLogprobs(training, [item])
      assertClose(r.promptLogprobs!.slice(1), forward!, 1e-4, what)
    }

    it('samples from PEFT exports of training adapters, staged like core stages them', async () => {
      assert.equal(sampling.info.vocabSize, v, 'training and sampling serve one vocabulary')
      const id = await trained(1)
      const dir = join(scratch, uid('export'))
      await training.exportAdapter(id, dir)
      const ref = await loadPeft(sampling, uid('peft'), dir)
      const p = tokens(8, 1, v) // its training data: the adapter certainly changed these
      await compare(ref, id, p, 'sampler (PEFT files) vs training forward')
      const base = await sampling.sample(sampleJob(p, { maxTokens: 1, promptLogprobs: true }))
      const tuned = await sampling.sample(sampleJob(p, { adapter: ref, maxTokens: 1, promptLogprobs: true }))
      assert.notDeepEqual(
        [...tuned.promptLogprobs!.slice(1)],
        [...base.promptLogprobs!.slice(1)],
        'the adapter is applied',
      )
      await unloadPeft(sampling, ref)
      await rejectsCoded(sampling.sample(sampleJob(p, { adapter: ref })), 'sampling with an unloaded adapter')
    })

    it('samples from training snapshots, as they were when taken', {
      skip: !caps.sampleFromTrainingSnapshot && 'does not declare sampleFromTrainingSnapshot',
    }, async () => {
      const id = await trained(3)
      const snap = uid('snapshot')
      await training.snapshotAdapter!(id, snap)
      const ref: AdapterRef = { kind: 'snapshot', id: snap }
      await sampling.loadAdapter(ref)
      const p = tokens(8, 3, v)
      await compare(ref, id, p, 'sampler (snapshot) vs training forward')
      const then = await sampling.sample(sampleJob(p, { adapter: ref, maxTokens: 1, promptLogprobs: true }))
      await training.forwardBackward([ceItem(id, p, v)])
      await training.optimStep(id, { ...ADAM, learningRate: 0.05 })
      const now = await sampling.sample(sampleJob(p, { adapter: ref, maxTokens: 1, promptLogprobs: true }))
      assertClose(
        now.promptLogprobs!.slice(1),
        then.promptLogprobs!.slice(1),
        1e-6,
        'the snapshot after more training',
      )
      await sampling.unloadAdapter(ref)
      await rejectsCoded(
        sampling.sample(sampleJob(p, { adapter: ref })),
        'sampling with an unloaded snapshot',
      )
    })
  })
}
