// Conformance against the PyTorch + transformers + PEFT golden values (test/fixtures/reference, shipped
// in the package): base and LoRA log-probabilities, every declared loss, two AdamW steps and greedy
// sampling, for each fixture whose architecture the provider declares. fp32 engines agree to 1e-4
// (log-probabilities, losses) and 1e-3 relative (after optimizer steps), as the fixtures' README says.

import assert from 'node:assert/strict'
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { basename, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  adamParamsOf,
  type LoraSpec,
  type LossFn,
  type SamplingEngine,
  type TrainItem,
  type TrainingEngine,
  type WireAdamParams,
} from '../../core/engine.js'
import { packageRoot } from '../package-root.js'
import {
  assertClose,
  forwardLogprobs,
  LOSS_CONFIG,
  loadPeft,
  openSampling,
  openTraining,
  sampleJob,
  scratchDir,
  type Target,
  uid,
  unloadPeft,
} from './harness.js'

interface Case {
  model_input: number[]
  target_tokens: number[]
  weights: number[]
  advantages: number[]
  sampling_logprobs: number[]
  topk_targets: number[][]
  topk_weights: number[][]
  base_logprobs: number[]
  lora_logprobs: number[]
  lora_topk_logprobs: number[][]
}

interface Expected {
  lora: { rank: number; alpha: number }
  cases: Case[]
  losses: Record<
    string,
    { loss_fn: LossFn; config?: Record<string, number>; total: number; per_case?: { loss: number }[] }
  >
  adam: WireAdamParams
  steps: { loss_before: number; grad_norm_before_clip: number }[]
  lora_logprobs_after_2_steps: number[][]
  greedy_after_2_steps: { prompt: number[]; tokens_and_logprobs: [number, number][] }
}

/** The fixtures shipped with this package. */
export function packagedReferences(): string[] {
  const root = join(packageRoot(), 'test', 'fixtures', 'reference')
  if (!existsSync(root)) return []
  return readdirSync(root)
    .map((name) => join(root, name))
    .filter((dir) => existsSync(join(dir, 'expected.json')))
    .sort()
}

function architectureOf(dir: string): string {
  const config = JSON.parse(readFileSync(join(dir, 'model', 'config.json'), 'utf8')) as {
    architectures?: string[]
  }
  return config.architectures?.[0] ?? 'unknown'
}

const ce = (id: string, c: Case, forwardOnly = true): TrainItem => ({
  adapterId: id,
  tokens: Int32Array.from(c.model_input),
  targets: Int32Array.from(c.target_tokens),
  k: 1,
  lossFn: 'cross_entropy',
  lossConfig: {},
  weights: Float32Array.from(c.weights),
  forwardOnly,
})

export function referenceSuite(t: Target, dirs: string[]): void {
  const caps = t.provider.capabilities
  for (const dir of dirs) {
    const arch = architectureOf(dir)
    const skip =
      !caps.architectures.includes(arch) &&
      `${arch} is not among the declared architectures [${caps.architectures.join(', ')}]`
    describe(`PyTorch reference ${basename(dir)} (${arch})`, { skip }, () => {
      const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected
      const model = join(dir, 'model')
      const spec: LoraSpec = {
        rank: expected.lora.rank,
        alpha: expected.lora.alpha,
        seed: 0,
        trainAttn: true,
        trainMlp: true,
        trainUnembed: true,
      }
      const maxLoraRank = Math.min(8, caps.maxLoraRank)
      const local = { ...t, maxLoraRank }
      let training: TrainingEngine | undefined
      let sampling: SamplingEngine | undefined
      const scratch = scratchDir()
      /** A training adapter holding the fixture's PEFT adapter (loadState accepts PEFT directories). */
      const fixtureAdapter = async (): Promise<string> => {
        const id = uid('reference')
        await training!.createAdapter(id, spec)
        await training!.loadState(id, join(dir, 'adapter'), { optimizer: false })
        return id
      }

      before(async () => {
        if (t.provider.createTraining) training = await openTraining(local, model)
        if (t.provider.createSampling) sampling = await openSampling(local, model)
      })
      after(async () => {
        await training?.close()
        await sampling?.close()
        rmSync(scratch, { recursive: true, force: true })
      })

      it('base log-probabilities (a fresh adapter changes nothing)', {
        skip: !t.provider.createTraining,
      }, async () => {
        const id = uid('fresh')
        await training!.createAdapter(id, spec)
        const out = await forwardLogprobs(
          training!,
          expected.cases.map((c) => ce(id, c)),
        )
        for (const [i, c] of expected.cases.entries())
          assertClose(out[i]!, c.base_logprobs, 1e-4, `case ${i}`)
      })

      it('LoRA log-probabilities, top-K targets too', { skip: !t.provider.createTraining }, async () => {
        const id = await fixtureAdapter()
        const out = await forwardLogprobs(
          training!,
          expected.cases.map((c) => ce(id, c)),
        )
        for (const [i, c] of expected.cases.entries())
          assertClose(out[i]!, c.lora_logprobs, 1e-4, `case ${i}`)
        const topk = expected.cases.map((c) => ({
          ...ce(id, c),
          targets: Int32Array.from(c.topk_targets.flat()),
          weights: Float32Array.from(c.topk_weights.flat()),
          k: c.topk_targets[0]!.length,
        }))
        const res = await training!.forwardBackward(topk)
        for (const [i, c] of expected.cases.entries())
          assertClose(res[i]!.logprobs, c.lora_topk_logprobs.flat(), 1e-4, `top-K case ${i}`)
        const total = res.reduce((sum, r) => sum + r.loss, 0)
        assertClose([total], [expected.losses.cross_entropy_topk!.total], 1e-4, 'top-K cross-entropy total')
      })

      for (const [name, loss] of Object.entries(expected.losses)) {
        if (loss.per_case === undefined) continue
        const declared = caps.losses.includes(loss.loss_fn)
        it(`${name} loss`, {
          skip: (!t.provider.createTraining || !declared) && 'not declared',
        }, async () => {
          const id = await fixtureAdapter()
          const items = expected.cases.map((c) => ({
            ...ce(id, c),
            lossFn: loss.loss_fn,
            // Engines receive loss_fn_config with the official defaults applied (core does it).
            lossConfig: { ...LOSS_CONFIG[loss.loss_fn], ...loss.config },
            ...(loss.loss_fn === 'cross_entropy'
              ? {}
              : {
                  logprobs: Float32Array.from(c.sampling_logprobs),
                  advantages: Float32Array.from(c.advantages),
                }),
          }))
          const out = await training!.forwardBackward(items)
          for (const [i, want] of loss.per_case!.entries())
            assertClose([out[i]!.loss], [want.loss], 1e-4, `${name} loss of case ${i}`)
        })
      }

      it('two AdamW steps', {
        skip:
          (!t.provider.createTraining || !caps.losses.includes('cross_entropy')) &&
          'does not train cross_entropy',
      }, async () => {
        const id = await fixtureAdapter()
        const adam = adamParamsOf(expected.adam)
        for (const [i, step] of expected.steps.entries()) {
          const out = await training!.forwardBackward(expected.cases.map((c) => ce(id, c, false)))
          const loss = out.reduce((sum, r) => sum + r.loss, 0)
          assertClose([loss], [step.loss_before], 1e-4, `loss before step ${i + 1}`)
          const r = await training!.optimStep(id, adam)
          assertClose([r.gradNorm], [step.grad_norm_before_clip], 1e-3, `gradient norm of step ${i + 1}`)
          assert.equal(r.step, i + 1)
        }
        const after2 = await forwardLogprobs(
          training!,
          expected.cases.map((c) => ce(id, c)),
        )
        for (const [i, want] of expected.lora_logprobs_after_2_steps.entries())
          assertClose(after2[i]!, want, 1e-3, `case ${i} after two steps`)
      })

      it('sampling with the trained adapter: prompt log-probabilities and greedy tokens', {
        skip: !t.provider.createSampling,
      }, async () => {
        // The trained adapter as PEFT files: the fixture's config beside the weights after two steps.
        const peft = join(scratch, 'after-2-steps')
        mkdirSync(peft)
        copyFileSync(join(dir, 'adapter', 'adapter_config.json'), join(peft, 'adapter_config.json'))
        copyFileSync(join(dir, 'adapter_after_2_steps.safetensors'), join(peft, 'adapter_model.safetensors'))
        const ref = await loadPeft(sampling!, uid('after-2-steps'), peft)
        const c = expected.cases[0]!
        const prompt = Int32Array.from([...c.model_input, c.target_tokens.at(-1)!])
        const scored = await sampling!.sample(
          sampleJob(prompt, { adapter: ref, maxTokens: 1, promptLogprobs: true }),
        )
        assertClose(
          scored.promptLogprobs!.slice(1),
          expected.lora_logprobs_after_2_steps[0]!,
          1e-3,
          'prompt logprobs',
        )
        const g = expected.greedy_after_2_steps
        const res = await sampling!.sample(
          sampleJob(Int32Array.from(g.prompt), { adapter: ref, maxTokens: g.tokens_and_logprobs.length }),
        )
        const seq = res.sequences[0]!
        assert.deepEqual(
          [...seq.tokens],
          g.tokens_and_logprobs.map(([tok]) => tok),
          'greedy tokens',
        )
        assertClose(
          seq.logprobs,
          g.tokens_and_logprobs.map(([, lp]) => lp),
          1e-3,
          'greedy logprobs',
        )
        await unloadPeft(sampling!, ref)
      })
    })
  }
}
