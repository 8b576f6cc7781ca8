// The native provider against the PyTorch golden values (qwen3 fixture): forward log-probabilities
// with and without the PEFT adapter, cross-entropy training steps, greedy sampling after training,
// and train/sample consistency (the sampler's log-probabilities equal forward's).
import assert from 'node:assert/strict'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import {
  adamParamsOf,
  type SampleJob,
  type SamplingEngine,
  type TrainItem,
  type TrainingEngine,
  type WireAdamParams,
} from '../../core/engine.js'
import { sampleJob } from '../../test/helpers/sample-job.js'
import { createNativeProvider } from './index.js'

const REF = new URL('../../test/fixtures/reference/qwen3/', import.meta.url).pathname
const REF_PEFT = { kind: 'peft', id: 'ref-peft', uri: pathToFileURL(join(REF, 'adapter')).href } as const

interface Case {
  model_input: number[]
  target_tokens: number[]
  weights: number[]
  base_logprobs: number[]
  lora_logprobs: number[]
}
const expected = JSON.parse(readFileSync(join(REF, 'expected.json'), 'utf8')) as {
  cases: Case[]
  steps: { loss_before: number; grad_norm_before_clip: number }[]
  adam: WireAdamParams
  lora_logprobs_after_2_steps: number[][]
  greedy_after_2_steps: { prompt: number[]; tokens_and_logprobs: [number, number][] }
}

function assertClose(actual: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, want.length, `${what}: length`)
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(actual[i]! - want[i]!)
    assert.ok(
      d <= tol * Math.max(1, Math.abs(want[i]!)),
      `${what}[${i}]: ${actual[i]} vs ${want[i]} (|d| ${d})`,
    )
  }
}

function ceItem(adapterId: string, c: Case, forwardOnly: boolean): TrainItem {
  return {
    adapterId,
    tokens: Int32Array.from(c.model_input),
    targets: Int32Array.from(c.target_tokens),
    k: 1,
    lossFn: 'cross_entropy',
    lossConfig: {},
    weights: Float32Array.from(c.weights),
    forwardOnly,
  }
}

const greedy = (prompt: number[], maxTokens: number, adapterId: string): SampleJob =>
  sampleJob(prompt, { maxTokens, adapter: { kind: 'snapshot', id: adapterId } })

describe('native engine vs the PyTorch reference (qwen3)', () => {
  let training: TrainingEngine
  let sampling: SamplingEngine
  const scratch = mkdtempSync(join(tmpdir(), 'tuft-native-ref-'))

  before(async () => {
    const provider = createNativeProvider()
    const ctx = {
      modelName: 'ref-qwen3',
      modelPath: join(REF, 'model'),
      maxModelLen: 0,
      maxLoraRank: 8,
      maxLoras: 32,
      maxBatchTokens: 16384,
      log: pino({ level: 'silent' }),
    }
    training = await provider.createTraining!({ threads: 2 }, ctx)
    sampling = await provider.createSampling!({ threads: 2 }, ctx)
  })
  after(async () => {
    await training.close()
    await sampling.close()
    rmSync(scratch, { recursive: true, force: true })
  })

  it('reports the model', () => {
    assert.equal(training.info.arch, 'qwen3')
    assert.equal(training.info.vocabSize, 1024)
    assert.equal(training.info.maxContext, 512)
    assert.match(training.info.device, /^cpu/)
  })

  it('forward of a fresh adapter (B = 0) gives the base log-probabilities', async () => {
    await training.createAdapter('fresh', {
      rank: 4,
      alpha: 8,
      seed: 1,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    })
    const out = await training.forwardBackward(expected.cases.map((c) => ceItem('fresh', c, true)))
    for (const [i, c] of expected.cases.entries())
      assertClose(out[i]!.logprobs, c.base_logprobs, 1e-4, `case ${i}`)
    await training.dropAdapter('fresh')
  })

  it('a PEFT adapter loaded by the sampler is visible to training forward (one shared engine)', async () => {
    await sampling.loadAdapter(REF_PEFT)
    const out = await training.forwardBackward(expected.cases.map((c) => ceItem('ref-peft', c, true)))
    for (const [i, c] of expected.cases.entries())
      assertClose(out[i]!.logprobs, c.lora_logprobs, 1e-4, `case ${i}`)
  })

  it('trains two AdamW steps like PyTorch, then samples greedily like PyTorch', async () => {
    // Start from the fixture adapter's weights: save its state layout from a fresh trainable adapter,
    // then overwrite the weights file with the fixture's.
    await training.createAdapter('run', {
      rank: 4,
      alpha: 8,
      seed: 0,
      trainAttn: true,
      trainMlp: true,
      trainUnembed: true,
    })
    const state = join(scratch, 'state')
    await training.saveState('run', state, { optimizer: false })
    copyFileSync(join(REF, 'adapter', 'adapter_model.safetensors'), join(state, 'adapter_model.safetensors'))
    await training.loadState('run', state, { optimizer: false })

    const adam = adamParamsOf(expected.adam)
    for (const [i, step] of expected.steps.entries()) {
      const out = await training.forwardBackward(expected.cases.map((c) => ceItem('run', c, false)))
      const loss = out.reduce((s, r) => s + r.loss, 0)
      assertClose([loss], [step.loss_before], 1e-4, `loss before step ${i}`)
      const r = await training.optimStep('run', adam)
      assertClose([r.gradNorm], [step.grad_norm_before_clip], 1e-3, `grad norm of step ${i}`)
      assert.equal(r.step, i + 1)
    }
    const after2 = await training.forwardBackward(expected.cases.map((c) => ceItem('run', c, true)))
    for (const [i, want] of expected.lora_logprobs_after_2_steps.entries()) {
      assertClose(after2[i]!.logprobs, want, 1e-3, `case ${i}`)
    }

    await training.snapshotAdapter!('run', 'run-snap')
    await sampling.loadAdapter({ kind: 'snapshot', id: 'run-snap' })
    const g = expected.greedy_after_2_steps
    const res = await sampling.sample(greedy(g.prompt, g.tokens_and_logprobs.length, 'run-snap'))
    const seq = res.sequences[0]!
    assert.deepEqual(
      [...seq.tokens],
      g.tokens_and_logprobs.map(([t]) => t),
    )
    assertClose(
      seq.logprobs,
      g.tokens_and_logprobs.map(([, lp]) => lp),
      1e-3,
      'greedy logprobs',
    )
    assert.equal(seq.stopReason, 'length')
  })

  it("sampled and prompt log-probabilities equal forward's (same kernels, 1e-5)", async () => {
    const c = expected.cases[2]!
    const res = await sampling.sample({
      ...greedy(c.model_input, 12, 'ref-peft'),
      temperature: 1,
      seed: 7n,
      promptLogprobs: true,
      topkPromptLogprobs: 3,
      adapter: REF_PEFT,
    })
    const gen = res.sequences[0]!
    const seqTokens = [...c.model_input, ...gen.tokens]
    const fwd = await training.forwardBackward([
      {
        ...ceItem('ref-peft', c, true),
        tokens: Int32Array.from(seqTokens.slice(0, -1)),
        targets: Int32Array.from(seqTokens.slice(1)),
        weights: new Float32Array(seqTokens.length - 1).fill(1),
      },
    ])
    const lp = fwd[0]!.logprobs
    const P = c.model_input.length
    assertClose(gen.logprobs, lp.slice(P - 1), 1e-5, 'sampled logprobs')
    assert.ok(Number.isNaN(res.promptLogprobs![0]!))
    assertClose(res.promptLogprobs!.slice(1), lp.slice(0, P - 1), 1e-5, 'prompt logprobs')
    assertClose(
      res.promptLogprobs!.slice(1),
      c.lora_logprobs.slice(0, P - 1),
      1e-4,
      'prompt logprobs vs reference',
    )

    // Top-K: position 0 unused; each row best first, and contains the prompt token's log-prob when it ranks.
    const topk = res.topkPromptLogprobs!
    assert.equal(topk.k, 3)
    assert.equal(topk.promptLength, P)
    assert.deepEqual([...topk.tokenIds.slice(0, 3)], [0, 0, 0])
    assert.deepEqual([...topk.logprobs.slice(0, 3)], [-99999, -99999, -99999])
    for (let i = 1; i < P; i++) {
      const row = topk.logprobs.slice(i * 3, i * 3 + 3)
      assert.ok(row[0]! >= row[1]! && row[1]! >= row[2]!, `row ${i} sorted`)
      assert.ok(row[0]! >= res.promptLogprobs![i]! - 1e-6, `row ${i}: best >= the prompt token`)
    }
  })
})
