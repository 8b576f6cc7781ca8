// Conformance of a TrainingEngine: result shapes, the declared losses, fusing, gradient accumulation,
// learning, bad input (coded 4xx, no harm to other adapters), checkpoints, PEFT export and snapshots.

import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { LOSS_FNS, type Manifest, type TrainItem, type TrainingEngine } from '../../core/engine.js'
import {
  ADAM,
  assertClose,
  assertLogprobs,
  ceItem,
  forwardLogprobs,
  lora,
  openTraining,
  rejectsCoded,
  rlItem,
  scratchDir,
  type Target,
  tokens,
  uid,
} from './harness.js'
import { expectedLoss } from './losses.js'

/** Every file a manifest lists exists with the size it states. */
function assertManifest(m: Manifest, dir: string, what: string): void {
  assert.ok(m.files.length > 0, `${what}: the manifest lists no files`)
  for (const f of m.files) {
    const path = join(dir, f.name)
    assert.ok(existsSync(path), `${what}: ${f.name} is listed but not written`)
    assert.equal(statSync(path).size, f.bytes, `${what}: ${f.name} size`)
  }
}

export function trainingSuite(t: Target): void {
  const caps = t.provider.capabilities
  describe('training engine', () => {
    let e: TrainingEngine
    let v: number
    const scratch = scratchDir()
    const rank = Math.min(4, t.maxLoraRank)
    const adapter = async (seed = 1): Promise<string> => {
      const id = uid('adapter')
      await e.createAdapter(id, lora(rank, seed))
      return id
    }
    /** One step of cross-entropy on `salt`'s data. */
    const step = async (id: string, salt: number) => {
      await e.forwardBackward([ceItem(id, tokens(7, salt, v), v)])
      return e.optimStep(id, ADAM)
    }

    before(async () => {
      e = await openTraining(t)
      v = e.info.vocabSize
    })
    after(async () => {
      await e?.close()
      rmSync(scratch, { recursive: true, force: true })
    })

    it('reports what it serves (info)', () => {
      const { info } = e
      assert.ok(Number.isInteger(info.vocabSize) && info.vocabSize >= 2, `vocabSize ${info.vocabSize}`)
      assert.ok(Number.isInteger(info.maxContext) && info.maxContext >= 16, `maxContext ${info.maxContext}`)
      assert.ok(
        Number.isInteger(info.maxLoraRank) && info.maxLoraRank >= 1 && info.maxLoraRank <= t.maxLoraRank,
        `maxLoraRank ${info.maxLoraRank} should be in [1, the context's ${t.maxLoraRank}]`,
      )
      assert.ok(info.device.length > 0, 'device names where it runs')
      assert.equal(typeof info.arch, 'string')
    })

    it('answers a call with one result per item, in order, shaped [N, K]', async () => {
      const a = await adapter()
      const b = await adapter(2)
      const items = [
        ceItem(a, tokens(5, 1, v), v, { forwardOnly: true }),
        ceItem(b, tokens(3, 2, v), v, { k: 3, forwardOnly: true }),
        ceItem(a, tokens(9, 3, v), v, { forwardOnly: true }),
      ]
      assert.deepEqual(await e.forwardBackward([]), [])
      const out = await e.forwardBackward(items)
      assert.equal(out.length, items.length)
      for (const [i, r] of out.entries()) {
        assert.ok(r.logprobs instanceof Float32Array, `item ${i}: logprobs is a Float32Array`)
        assert.equal(
          r.logprobs.length,
          items[i]!.tokens.length * items[i]!.k,
          `item ${i}: N x K log-probabilities`,
        )
        assertLogprobs(r.logprobs, `item ${i} logprobs`)
      }
      // Order: the same items alone give the same answers.
      const alone = await forwardLogprobs(e, [items[2]!])
      assertClose(out[2]!.logprobs, alone[0]!, 1e-4, 'item 2 alone')
    })

    for (const lossFn of LOSS_FNS) {
      const declared = caps.losses.includes(lossFn)
      it(`computes ${lossFn} as the Tinker spec defines it`, {
        skip: !declared && 'not declared',
      }, async () => {
        const a = await adapter()
        const items: TrainItem[] =
          lossFn === 'cross_entropy'
            ? [
                ceItem(a, tokens(6, 4, v), v, { forwardOnly: true }),
                ceItem(a, tokens(4, 5, v), v, { k: 2, forwardOnly: true }),
              ]
            : [rlItem(a, lossFn, tokens(6, 4, v), v), rlItem(a, lossFn, tokens(10, 6, v), v)]
        const out = await e.forwardBackward(items)
        for (const [i, r] of out.entries()) {
          const want = expectedLoss(items[i]!, r.logprobs)
          assertClose([r.loss], [want], 1e-4, `${lossFn} loss of item ${i} from its own logprobs`)
        }
      })
    }

    it('rejects losses it does not declare with a coded 4xx error', {
      skip: caps.losses.length === LOSS_FNS.length && 'declares every loss',
    }, async () => {
      const a = await adapter()
      for (const lossFn of LOSS_FNS.filter((l) => !caps.losses.includes(l))) {
        await rejectsCoded(
          e.forwardBackward([rlItem(a, lossFn, tokens(4, 1, v), v)]),
          `undeclared loss ${lossFn}`,
        )
      }
    })

    it('fuses items of different adapters without changing any result', async () => {
      const a = await adapter(1)
      const b = await adapter(2)
      await step(a, 1)
      await step(b, 2)
      const ia = ceItem(a, tokens(8, 3, v), v, { forwardOnly: true })
      const ib = ceItem(b, tokens(5, 4, v), v, { forwardOnly: true })
      const [fa, fb] = await forwardLogprobs(e, [ia, ib])
      assertClose(fa!, (await forwardLogprobs(e, [ia]))[0]!, 1e-4, 'adapter a fused vs alone')
      assertClose(fb!, (await forwardLogprobs(e, [ib]))[0]!, 1e-4, 'adapter b fused vs alone')
    })

    it('accumulates gradients until optimStep; forward-only passes accumulate none', async () => {
      const idle = await adapter()
      await forwardLogprobs(e, [ceItem(idle, tokens(6, 1, v), v)])
      const none = await e.optimStep(idle, ADAM)
      assert.ok(none.gradNorm <= 1e-6, `gradient norm after forward-only passes: ${none.gradNorm}`)
      assert.equal(none.step, 1)

      const halves = await adapter()
      const whole = await adapter()
      const first = ceItem(halves, tokens(6, 2, v), v)
      const second = ceItem(halves, tokens(5, 3, v), v)
      await e.forwardBackward([first])
      await e.forwardBackward([second])
      await e.forwardBackward([
        { ...first, adapterId: whole },
        { ...second, adapterId: whole },
      ])
      const h = await e.optimStep(halves, ADAM)
      const w = await e.optimStep(whole, ADAM)
      assert.ok(h.gradNorm > 0, 'a backward pass produces a gradient')
      assertClose([h.gradNorm], [w.gradNorm], 1e-4, 'two half batches vs one batch: gradient norm')
      // Probed on its training data, which the step certainly changed (in any model).
      const probe = { ...first, forwardOnly: true }
      assertClose(
        (await forwardLogprobs(e, [probe]))[0]!,
        (await forwardLogprobs(e, [{ ...probe, adapterId: whole }]))[0]!,
        1e-4,
        'weights after the step',
      )
      assert.equal((await e.optimStep(halves, ADAM)).step, 2, 'the step counter counts optimStep calls')
    })

    it('lowers the loss on its data with AdamW steps', async () => {
      const a = await adapter()
      const item = ceItem(a, tokens(8, 5, v), v)
      const losses: number[] = []
      for (let i = 0; i < 4; i++) {
        losses.push((await e.forwardBackward([item]))[0]!.loss)
        await e.optimStep(a, ADAM)
      }
      assert.ok(losses[3]! < losses[0]!, `loss went from ${losses[0]} to ${losses[3]}`)
    })

    it('rejects bad input with a coded 4xx error, leaving every other adapter as it was', async () => {
      const victim = await adapter(3)
      const twin = await adapter(3)
      const other = await adapter(4)
      const good = ceItem(victim, tokens(6, 1, v), v)
      await e.forwardBackward([good])
      await e.forwardBackward([{ ...good, adapterId: twin }])
      const probe = { ...good, forwardOnly: true }
      const before = (await forwardLogprobs(e, [probe]))[0]!
      const n = 5
      const ok = ceItem(other, tokens(n, 3, v), v)
      const rl = caps.losses.find((l) => l !== 'cross_entropy')
      const bad: [string, TrainItem][] = [
        ['a token id = vocabSize', { ...ok, tokens: Int32Array.from([1, v, 2, 3, 4]) }],
        ['a negative token id', { ...ok, tokens: Int32Array.from([1, -1, 2, 3, 4]) }],
        ['a target id = vocabSize', { ...ok, targets: Int32Array.from([1, 2, v, 3, 4]) }],
        ['N x K targets mismatch', { ...ok, targets: Int32Array.from([1, 2, 3]) }],
        [
          'no tokens',
          { ...ok, tokens: new Int32Array(0), targets: new Int32Array(0), weights: new Float32Array(0) },
        ],
        ['more tokens than the context', ceItem(other, tokens(e.info.maxContext + 1, 4, v), v)],
        ['k = 0', { ...ok, k: 0 }],
        ['a NaN weight', { ...ok, weights: Float32Array.from([1, Number.NaN, 1, 1, 1]) }],
        ['an unknown adapter', { ...ok, adapterId: uid('never-created') }],
      ]
      if (rl) {
        const r = rlItem(other, rl, tokens(n, 5, v), v, false)
        bad.push([`${rl} without advantages`, { ...r, advantages: undefined } as TrainItem])
      }
      for (const [what, item] of bad) {
        await rejectsCoded(e.forwardBackward([item]), `forwardBackward with ${what}`)
        await rejectsCoded(
          e.forwardBackward([good, item]),
          `a fused call with ${what} beside another adapter`,
        )
      }
      await rejectsCoded(
        e.optimStep(victim, { ...ADAM, learningRate: Number.NaN }),
        'optimStep with a NaN rate',
      )
      await rejectsCoded(e.optimStep(uid('never-created'), ADAM), 'optimStep of an unknown adapter')
      assertClose(
        (await forwardLogprobs(e, [probe]))[0]!,
        before,
        1e-6,
        'the other adapter after rejected calls',
      )
      // The rejected fused calls added nothing to its gradient: it steps exactly like its twin.
      const sv = await e.optimStep(victim, ADAM)
      const st = await e.optimStep(twin, ADAM)
      assertClose([sv.gradNorm], [st.gradNorm], 1e-5, 'gradient norm of the adapter beside rejected items')
      assert.equal(sv.step, st.step)
      assertClose(
        (await forwardLogprobs(e, [probe]))[0]!,
        (await forwardLogprobs(e, [{ ...probe, adapterId: twin }]))[0]!,
        1e-5,
        'weights after the step',
      )
    })

    it('rejects LoRA ranks outside [1, info.maxLoraRank] and calls on dropped adapters', async () => {
      await rejectsCoded(e.createAdapter(uid('rank0'), lora(0)), 'rank 0')
      await rejectsCoded(
        e.createAdapter(uid('too-large'), lora(e.info.maxLoraRank + 1)),
        'rank above maxLoraRank',
      )
      const a = await adapter()
      await e.dropAdapter(a)
      await rejectsCoded(
        e.forwardBackward([ceItem(a, tokens(4, 1, v), v)]),
        'forwardBackward of a dropped adapter',
      )
      await rejectsCoded(e.optimStep(a, ADAM), 'optimStep of a dropped adapter')
    })

    it('round-trips weights and optimizer state through saveState and loadState', async () => {
      const a = await adapter(1)
      await step(a, 1)
      const dir = join(scratch, uid('state'))
      assertManifest(await e.saveState(a, dir, { optimizer: true }), dir, 'saveState')
      const b = await adapter(2)
      await e.loadState(b, dir, { optimizer: true })
      const probe = ceItem(a, tokens(7, 2, v), v)
      const lpB = async () => (await forwardLogprobs(e, [{ ...probe, adapterId: b }]))[0]!
      assertClose(await lpB(), (await forwardLogprobs(e, [probe]))[0]!, 1e-6, 'weights after loadState')
      // The optimizer moments and step counter came along: the next step is the same on both.
      const sa = await step(a, 2)
      const sb = await step(b, 2)
      assert.equal(sb.step, sa.step, 'step counter after loadState with the optimizer')
      assertClose([sb.gradNorm], [sa.gradNorm], 1e-5, 'gradient norm')
      assertClose(await lpB(), (await forwardLogprobs(e, [probe]))[0]!, 1e-5, 'weights one step later')

      const c = await adapter(3)
      await e.loadState(c, dir, { optimizer: false })
      assert.equal((await step(c, 3)).step, 1, 'loadState without the optimizer starts counting again')
      await rejectsCoded(
        e.loadState(c, join(scratch, 'missing'), { optimizer: false }),
        'loadState of a missing dir',
        false,
      )
    })

    it('exports adapters in the PEFT layout', async () => {
      const a = await adapter()
      await step(a, 4)
      const dir = join(scratch, uid('peft'))
      const m = await e.exportAdapter(a, dir)
      assertManifest(m, dir, 'exportAdapter')
      const names = m.files.map((f) => f.name)
      for (const name of ['adapter_config.json', 'adapter_model.safetensors'])
        assert.ok(names.includes(name), `exportAdapter writes ${name} (wrote ${names.join(', ')})`)
      const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<
        string,
        unknown
      >
      assert.equal(config.r, rank, 'adapter_config.json r')
      assert.equal(config.lora_alpha, lora(rank).alpha, 'adapter_config.json lora_alpha')
      await rejectsCoded(
        e.exportAdapter(uid('never-created'), join(scratch, uid('none'))),
        'export of an unknown adapter',
      )
    })

    it('takes point-in-time snapshots that later training does not change', {
      skip: caps.snapshots !== 'shared-memory' && "declares snapshots: 'peft-files'",
    }, async () => {
      assert.equal(typeof e.snapshotAdapter, 'function', 'shared-memory snapshots need snapshotAdapter')
      const a = await adapter()
      await step(a, 5)
      const then = join(scratch, uid('then'))
      await e.exportAdapter(a, then)
      const snap = uid('snapshot')
      await e.snapshotAdapter!(a, snap)
      await step(a, 6)
      const later = join(scratch, uid('later'))
      await e.exportAdapter(snap, later)
      assert.deepEqual(
        readFileSync(join(later, 'adapter_model.safetensors')),
        readFileSync(join(then, 'adapter_model.safetensors')),
        'the snapshot exports the weights it was taken with',
      )
    })
  })
}
