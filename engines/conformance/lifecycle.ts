// Conformance of health() and close(): engines report themselves healthy while open and not after
// close, a closed engine rejects work with a coded error, and closing one engine leaves the provider's
// other engines of the same model serving.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { EngineHealth, SamplingEngine, TrainingEngine } from '../../core/engine.js'
import {
  ceItem,
  lora,
  openSampling,
  openTraining,
  rejectsCoded,
  sampleJob,
  type Target,
  tokens,
  uid,
} from './harness.js'

function assertHealth(h: EngineHealth, ok: boolean, what: string): void {
  assert.equal(typeof h.ok, 'boolean', `${what}: health() answers { ok }`)
  assert.equal(h.ok, ok, `${what}: health() says ${JSON.stringify(h)}`)
  if (h.message !== undefined) assert.equal(typeof h.message, 'string')
}

export function lifecycleSuite(t: Target): void {
  describe('health and close', () => {
    it('reports health while open, and closing one engine leaves the others serving', async () => {
      const trainings: TrainingEngine[] = []
      const samplings: SamplingEngine[] = []
      try {
        if (t.provider.createTraining) trainings.push(await openTraining(t), await openTraining(t))
        if (t.provider.createSampling) samplings.push(await openSampling(t), await openSampling(t))
        const engines = [...trainings, ...samplings]
        for (const e of engines) assertHealth(await e.health(), true, 'an open engine')
        const [keptT, closedT] = trainings
        const [keptS, closedS] = samplings
        await closedT?.close()
        await closedS?.close()
        await closedT?.close()
        await closedS?.close()
        if (closedT) {
          assertHealth(await closedT.health(), false, 'a closed training engine')
          await rejectsCoded(closedT.createAdapter(uid('late'), lora(1)), 'createAdapter after close', false)
        }
        if (closedS) {
          assertHealth(await closedS.health(), false, 'a closed sampling engine')
          await rejectsCoded(
            closedS.sample(sampleJob(tokens(3, 1, closedS.info.vocabSize))),
            'sample after close',
            false,
          )
        }
        if (keptT) {
          assertHealth(await keptT.health(), true, 'the training engine left open')
          const id = uid('after-close')
          await keptT.createAdapter(id, lora(1))
          await keptT.forwardBackward([ceItem(id, tokens(4, 2, keptT.info.vocabSize), keptT.info.vocabSize)])
        }
        if (keptS) {
          assertHealth(await keptS.health(), true, 'the sampling engine left open')
          await keptS.sample(sampleJob(tokens(3, 3, keptS.info.vocabSize)))
        }
      } finally {
        // close() twice is harmless (checked above), so everything is closed again here.
        for (const e of [...trainings, ...samplings]) await e.close()
      }
    })
  })
}
