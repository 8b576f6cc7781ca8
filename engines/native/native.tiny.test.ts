// The native provider on the generated tiny Qwen3 model (real tokenizer): LoRA training lowers the
// loss and is remembered by sampling; continuous batching with mixed adapters, seeds, stop rules,
// cancellation, coded errors, checkpoint manifests and close().
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { pino } from 'pino'
import type {
  AdamParams,
  EngineContext,
  SampleResult,
  SamplingEngine,
  TrainingEngine,
} from '../../core/engine.js'
import { sampleJob } from '../../test/helpers/sample-job.js'
import { sftItem as sft } from '../../test/helpers/sft-item.js'
import { ensureEmbeddedModel } from '../embedded-model.js'
import { createNativeProvider } from './index.js'
import { loadTokenBytes } from './token-bytes.js'

const ADAM: AdamParams = {
  learningRate: 2e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0,
  gradClipNorm: 0,
}
const LORA = { rank: 8, alpha: 16, seed: 3, trainAttn: true, trainMlp: true, trainUnembed: true }

const job = sampleJob

describe('native engine on the tiny generated model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-native-tiny-'))
  let ctx: EngineContext
  let training: TrainingEngine
  let sampling: SamplingEngine
  // A fixed "sentence" of token ids, the continuation the adapter must learn.
  const text = [
    9707, 11, 1879, 0, 358, 1079, 264, 1273, 13, 576, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562,
  ]

  before(async () => {
    ctx = {
      modelName: 'tiny',
      modelPath: await ensureEmbeddedModel(join(dir, 'models')),
      maxModelLen: 256,
      maxLoraRank: 16,
      maxLoras: 32,
      maxBatchTokens: 64,
      log: pino({ level: 'silent' }),
    }
    const provider = createNativeProvider()
    training = await provider.createTraining!({ threads: 2 }, ctx)
    sampling = await provider.createSampling!({ threads: 2 }, ctx)
  })
  after(async () => {
    await training.close()
    await sampling.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('learns a sequence: the loss falls and greedy sampling reproduces it', async () => {
    await training.createAdapter('learner', LORA)
    const losses: number[] = []
    for (let step = 0; step < 12; step++) {
      const [r] = await training.forwardBackward([sft('learner', text)])
      losses.push(r!.loss)
      await training.optimStep('learner', ADAM)
    }
    assert.ok(
      losses[0]! > 100,
      `initial loss ${losses[0]} should be near ${(text.length - 1) * Math.log(151936)}`,
    )
    assert.ok(losses.at(-1)! < losses[0]! * 0.25, `loss fell from ${losses[0]} to ${losses.at(-1)}`)

    await training.snapshotAdapter!('learner', 'learner@1')
    await sampling.loadAdapter({ kind: 'snapshot', id: 'learner@1' })
    const res = await sampling.sample(
      job(text.slice(0, 4), { adapter: { kind: 'snapshot', id: 'learner@1' }, maxTokens: 6 }),
    )
    assert.deepEqual([...res.sequences[0]!.tokens], text.slice(4, 10))
  })

  // Greedy, so that the comparison is exact: batch composition changes GEMM blocking, which moves
  // logits in the last bits and could move a temperature draw that lands on a CDF boundary.
  it('batches requests with different adapters exactly like running them alone', async () => {
    const ids = ['m0', 'm1', 'm2']
    for (const [i, id] of ids.entries()) {
      await training.createAdapter(id, { ...LORA, seed: 10 + i })
      await training.forwardBackward([sft(id, text.slice(i, i + 8))])
      await training.optimStep(id, ADAM)
      await training.snapshotAdapter!(id, `${id}@s`)
      await sampling.loadAdapter({ kind: 'snapshot', id: `${id}@s` })
    }
    const jobs = [null, ...ids.map((id) => `${id}@s`), null, 'm1@s'].map((a, i) =>
      job(text.slice(i, i + 3 + i), {
        adapter: a === null ? null : { kind: 'snapshot', id: a },
        maxTokens: 5 + i,
        seed: BigInt(i),
        numSamples: 1 + (i % 3),
      }),
    )
    const alone: SampleResult[] = []
    for (const j of jobs) alone.push(await sampling.sample(j))
    const together = await Promise.all(jobs.map((j) => sampling.sample(j)))
    for (const [i, r] of together.entries()) {
      const a = alone[i]!
      assert.equal(r.sequences.length, jobs[i]!.numSamples)
      for (const [s, seq] of r.sequences.entries()) {
        assert.deepEqual([...seq.tokens], [...a.sequences[s]!.tokens], `job ${i} sample ${s}`)
        for (const [t, lp] of seq.logprobs.entries()) {
          assert.ok(Math.abs(lp - a.sequences[s]!.logprobs[t]!) < 1e-4, `job ${i} sample ${s} logprob ${t}`)
        }
      }
    }
    // Different adapters really did produce different continuations.
    const outs = new Set(together.slice(0, 4).map((r) => r.sequences[0]!.tokens.join(',')))
    assert.ok(outs.size > 1)
  })

  // The logit rows of a step (the last prompt row of every new request, one row per running sequence)
  // share one LM-head product. At most 32 rows in the step, so every product of the step takes the
  // small-M kernel, whose sums do not depend on the row count: temperature draws must match exactly.
  it('draws the same seeded tokens for requests admitted together as for each alone', async () => {
    const ids = ['g0', 'g1']
    for (const [i, id] of ids.entries()) {
      await training.createAdapter(id, { ...LORA, seed: 20 + i })
      await training.forwardBackward([sft(id, text.slice(i + 2, i + 10))])
      await training.optimStep(id, ADAM)
      await training.snapshotAdapter!(id, `${id}@s`)
      await sampling.loadAdapter({ kind: 'snapshot', id: `${id}@s` })
    }
    const jobs = ['g0@s', null, 'g1@s', 'g0@s', null].map((a, i) =>
      job(text.slice(i, i + 2 + i), {
        adapter: a === null ? null : { kind: 'snapshot', id: a },
        maxTokens: 4 + i,
        temperature: 1,
        seed: BigInt(100 + i),
      }),
    )
    const alone: SampleResult[] = []
    for (const j of jobs) alone.push(await sampling.sample(j))
    const together = await Promise.all(jobs.map((j) => sampling.sample(j)))
    for (const [i, r] of together.entries()) {
      const a = alone[i]!.sequences[0]!
      assert.deepEqual([...r.sequences[0]!.tokens], [...a.tokens], `job ${i} tokens`)
      assert.deepEqual([...r.sequences[0]!.logprobs], [...a.logprobs], `job ${i} logprobs`)
    }
  })

  it('is reproducible in its seed, and the seed matters', async () => {
    const j = job(text.slice(0, 3), {
      temperature: 1,
      topK: 50,
      topP: 0.9,
      maxTokens: 10,
      numSamples: 3,
      seed: 42n,
    })
    const a = await sampling.sample(j)
    const b = await sampling.sample(j)
    assert.deepEqual(
      a.sequences.map((s) => [...s.tokens]),
      b.sequences.map((s) => [...s.tokens]),
    )
    const samples = new Set(a.sequences.map((s) => s.tokens.join(',')))
    assert.ok(samples.size > 1, 'samples of one request use independent streams')
    const c = await sampling.sample({ ...j, seed: 43n })
    assert.notDeepEqual(
      c.sequences.map((s) => [...s.tokens]),
      a.sequences.map((s) => [...s.tokens]),
    )
  })

  it('stops on stop tokens and stop strings, keeping the stopping token', async () => {
    const free = (await sampling.sample(job(text.slice(0, 2), { maxTokens: 12 }))).sequences[0]!
    assert.equal(free.stopReason, 'length')
    assert.equal(free.tokens.length, 12)
    const stopAt = 3
    const stopToken = free.tokens[stopAt]!
    const first = free.tokens.indexOf(stopToken)
    const byToken = (await sampling.sample(job(text.slice(0, 2), { maxTokens: 12, stopTokens: [stopToken] })))
      .sequences[0]!
    assert.equal(byToken.stopReason, 'stop')
    assert.deepEqual([...byToken.tokens], [...free.tokens.slice(0, first + 1)])

    // A stop string made of the decoded bytes of tokens 4..5, found at the earliest point it appears.
    const { bytes, lens } = await loadTokenBytes(join(ctx.modelPath, 'tokenizer.json'), 151936)
    const offsets = new Int32Array(lens.length + 1)
    for (let i = 0; i < lens.length; i++) offsets[i + 1] = offsets[i]! + lens[i]!
    const piece = (t: number) => Buffer.from(bytes.subarray(offsets[t]!, offsets[t + 1]!))
    const generated = [...free.tokens].map(piece)
    const stopBytes = Buffer.concat(generated.slice(4, 6))
    const stop = stopBytes.toString('utf8')
    assert.ok(
      Buffer.from(stop, 'utf8').equals(stopBytes),
      'tokens 4..5 of the deterministic model decode as UTF-8',
    )
    let end = 0
    let acc = Buffer.alloc(0)
    while (acc.indexOf(Buffer.from(stop, 'utf8')) < 0) acc = Buffer.concat([acc, generated[end++]!])
    const byString = (await sampling.sample(job(text.slice(0, 2), { maxTokens: 12, stopStrings: [stop] })))
      .sequences[0]!
    assert.equal(byString.stopReason, 'stop')
    assert.deepEqual([...byString.tokens], [...free.tokens.slice(0, end)])
  })

  it('cancels a request when its signal aborts, and keeps serving', async () => {
    const controller = new AbortController()
    const long = sampling.sample(job(text.slice(0, 2), { maxTokens: 200, signal: controller.signal }))
    setTimeout(() => controller.abort(), 20)
    await assert.rejects(long, { code: 'TUFT_UNAVAILABLE' })
    const ok = await sampling.sample(job(text.slice(0, 2), { maxTokens: 2 }))
    assert.equal(ok.sequences[0]!.tokens.length, 2)
  })

  it('maps errors to coded errors', async () => {
    await assert.rejects(sampling.sample(job([151936])), { code: 'TUFT_BAD_REQUEST' })
    await assert.rejects(sampling.sample(job([1], { adapter: { kind: 'snapshot', id: 'nope' } })), {
      code: 'TUFT_NOT_FOUND',
    })
    await assert.rejects(training.forwardBackward([sft('nope', text)]), { code: 'TUFT_NOT_FOUND' })
    // Validated by the engine only: a duplicate adapter id is TE_EINVAL → TUFT_BAD_REQUEST.
    await training.createAdapter('dup', LORA)
    await assert.rejects(training.createAdapter('dup', LORA), {
      code: 'TUFT_BAD_REQUEST',
      message: /already exists/,
    })
    await assert.rejects(training.createAdapter('big', { ...LORA, rank: 32 }), { code: 'TUFT_BAD_REQUEST' })
  })

  it('refuses bad input in the engine itself (no TypeScript pre-check), and keeps serving', async () => {
    const bad = (pattern: RegExp) => ({ code: 'TUFT_BAD_REQUEST', message: pattern })
    const item = sft('learner', text.slice(0, 6))
    await assert.rejects(
      training.forwardBackward([{ ...item, targets: item.targets.subarray(1) }]),
      bad(/targets has 4 values, expected 5/),
    )
    await assert.rejects(
      training.forwardBackward([{ ...item, weights: Float32Array.from([1, Number.NaN, 1, 1, 1]) }]),
      bad(/weights/),
    )
    await assert.rejects(
      training.forwardBackward([{ ...item, tokens: Int32Array.from([1, 2, 151936, 4, 5]) }]),
      bad(/outside the vocabulary/),
    )
    const rl = {
      ...item,
      lossFn: 'ppo' as const,
      lossConfig: { clip_low_threshold: 0.8, clip_high_threshold: 1.2 },
    }
    await assert.rejects(training.forwardBackward([rl]), bad(/logprobs/))
    await assert.rejects(
      training.optimStep('learner', { ...ADAM, learningRate: Number.NaN }),
      bad(/adam params must be finite/),
    )
    await assert.rejects(sampling.sample(job([1, 2], { topP: 0 })), bad(/top_p/))
    await assert.rejects(sampling.sample(job([1, 2], { maxTokens: 300 })), bad(/maximum sequence length/))
    const ok = await training.forwardBackward([{ ...item, forwardOnly: true }])
    assert.equal(ok[0]!.logprobs.length, 5)
    await assert.rejects(
      training.loadState('dup', join(dir, 'missing'), { optimizer: true }),
      (err: { code: string }) => err.code === 'TUFT_NOT_FOUND' || err.code === 'TUFT_ENGINE',
    )
  })

  it('writes checkpoints and PEFT exports with manifests', async () => {
    const state = await training.saveState('learner', join(dir, 'ckpt', 'state'), { optimizer: true })
    const names = state.files.map((f) => f.name)
    assert.ok(names.includes('adapter_model.safetensors') && names.includes('adapter_config.json'))
    assert.ok(names.includes('optimizer.safetensors'))
    assert.ok(state.files.every((f) => f.bytes > 0))
    const peft = await training.exportAdapter('learner', join(dir, 'ckpt', 'peft'))
    assert.deepEqual(peft.files.map((f) => f.name).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
    ])
    // The export is loadable by a sampler and reproduces the trained continuation.
    const peftRef = {
      kind: 'peft',
      id: 'learner-peft',
      uri: pathToFileURL(join(dir, 'ckpt', 'peft')).href,
    } as const
    await sampling.loadAdapter(peftRef)
    const res = await sampling.sample(
      job(text.slice(0, 4), {
        adapter: peftRef,
        maxTokens: 6,
      }),
    )
    assert.deepEqual([...res.sequences[0]!.tokens], text.slice(4, 10))
  })

  it('bounds the KV cache: oversized requests are refused, the rest wait for blocks', async () => {
    // 1 MiB holds 1024 positions of this model (2 layers × k, v × 64 floats); 64 blocks of 16.
    const own = await createNativeProvider().createSampling!({ threads: 1, kv_cache_mb: 1 }, ctx)
    try {
      await assert.rejects(own.sample(job(text.slice(0, 2), { numSamples: 8, maxTokens: 200 })), {
        code: 'TUFT_BAD_REQUEST',
        message: /KV cache/,
      })
      // Each needs 8 samples × 4 blocks = 32 of the 64 blocks: two run, the third waits.
      const jobs = [0, 1, 2].map((i) => job(text.slice(i, i + 2), { numSamples: 8, maxTokens: 60 }))
      const together = await Promise.all(jobs.map((j) => own.sample(j)))
      for (const [i, r] of together.entries()) {
        const alone = await own.sample(jobs[i]!)
        assert.deepEqual(
          r.sequences.map((q) => [...q.tokens]),
          alone.sequences.map((q) => [...q.tokens]),
        )
        assert.equal(r.sequences[0]!.tokens.length, 60)
      }
    } finally {
      await own.close()
    }
  })

  it('close() fails in-flight samples cleanly and rejects later calls', async () => {
    const provider = createNativeProvider()
    const own = await provider.createSampling!({ threads: 1 }, ctx)
    const inflight = assert.rejects(own.sample(job(text.slice(0, 2), { maxTokens: 200 })), {
      code: 'TUFT_UNAVAILABLE',
    })
    await new Promise((r) => setTimeout(r, 20))
    await own.close()
    await inflight
    await assert.rejects(own.sample(job([1])), { code: 'TUFT_UNAVAILABLE' })
  })
})
