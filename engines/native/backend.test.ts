// The native provider's `backend` option on the tiny generated model: a named backend is used,
// reported as EngineInfo.device and logged; unknown names, unavailable backends and a second engine
// asking another backend for the same model fail with TUFT_CONFIG.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import type { EngineContext } from '../../core/engine.js'
import { isTuftError } from '../../core/errors.js'
import { ensureEmbeddedModel } from '../embedded-model.js'
import { loadBinding } from './binding.js'
import { checkBackend, createNativeProvider } from './index.js'

const isConfigError = (re: RegExp) => (e: unknown) =>
  isTuftError(e) && e.code === 'TUFT_CONFIG' && re.test(e.message)

describe('native engine backend option', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-native-backend-'))
  const logs: Record<string, unknown>[] = []
  let ctx: EngineContext

  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        logs.push(JSON.parse(String(chunk)))
        done()
      },
    })
    ctx = {
      modelName: 'tiny',
      modelPath: await ensureEmbeddedModel(join(dir, 'models')),
      maxModelLen: 128,
      maxLoraRank: 8,
      maxLoras: 4,
      maxBatchTokens: 64,
      log: pino({ level: 'info' }, sink),
    }
  })
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('lists the CPU backends last, cpu-builtin always available', () => {
    const names = loadBinding()
      .backends()
      .map((b) => b.name)
    assert.deepEqual(names.slice(-2), ['cpu', 'cpu-builtin'])
    assert.ok(
      loadBinding()
        .backends()
        .every((b) => b.name !== 'cpu-builtin' || b.available),
    )
  })

  it("runs on 'cpu-builtin' when asked, and reports and logs it", async () => {
    const training = await createNativeProvider().createTraining!({ threads: 1, backend: 'cpu-builtin' }, ctx)
    try {
      assert.equal(training.info.device, 'cpu:builtin')
      const open = logs.find((l) => l.msg === 'native engine open')
      assert.equal(open?.backend, 'cpu-builtin')
      assert.equal(open?.device, 'cpu:builtin')
      await training.createAdapter('a', {
        rank: 4,
        alpha: 8,
        seed: 1,
        trainAttn: true,
        trainMlp: true,
        trainUnembed: false,
      })
      const [r] = await training.forwardBackward([
        {
          adapterId: 'a',
          tokens: Int32Array.from([1, 2, 3]),
          targets: Int32Array.from([2, 3, 4]),
          k: 1,
          lossFn: 'cross_entropy',
          lossConfig: {},
          weights: new Float32Array(3).fill(1),
          forwardOnly: false,
        },
      ])
      assert.ok(Number.isFinite(r!.loss) && r!.loss > 0)
    } finally {
      await training.close()
    }
  })

  it("defaults to 'auto': the first available backend", async () => {
    const first = loadBinding()
      .backends()
      .find((b) => b.available)!
    const sampling = await createNativeProvider().createSampling!({ threads: 1 }, ctx)
    try {
      assert.equal(sampling.info.device, first.device)
    } finally {
      await sampling.close()
    }
  })

  it('refuses an unknown backend with TUFT_CONFIG naming the ones this build has', async () => {
    await assert.rejects(
      createNativeProvider().createTraining!({ backend: 'no-such-backend' }, ctx),
      isConfigError(/unknown backend 'no-such-backend'.*cpu-builtin/),
    )
  })

  it('refuses a second backend for a model whose engine is open', async () => {
    const provider = createNativeProvider()
    const training = await provider.createTraining!({ threads: 1, backend: 'cpu-builtin' }, ctx)
    try {
      await assert.rejects(
        provider.createSampling!({ backend: 'cpu' }, ctx),
        isConfigError(/already open on backend 'cpu-builtin'/),
      )
      const sampling = await provider.createSampling!({ backend: 'auto' }, ctx)
      assert.equal(sampling.info.device, 'cpu:builtin')
      await sampling.close()
    } finally {
      await training.close()
    }
  })

  it('refuses a registered backend that cannot run here', () => {
    const backends = [
      { name: 'gpu', device: 'gpu:0', available: false },
      { name: 'cpu', device: 'cpu:builtin', available: true },
    ]
    assert.throws(() => checkBackend('gpu', backends), isConfigError(/'gpu' is not available/))
    assert.doesNotThrow(() => checkBackend('cpu', backends))
    assert.doesNotThrow(() => checkBackend('auto', backends))
  })
})
