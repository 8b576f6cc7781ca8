// Core reads what providers declare, never their names: training snapshots reach a sampler in memory
// only when one provider object declares it can, otherwise as staged PEFT files; undeclared losses and
// ranks above the declared limit are answered with a 400; a provider whose engine lacks what it
// declares fails at load; /readyz reports each engine's health().

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { AdapterRef, EngineCapabilities, EngineProvider } from '../core/engine.js'
import { EngineRegistry } from '../core/registry.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, MODEL, testConfig, VOCAB } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

const dirs: string[] = []
const apps: FastifyInstance[] = []
after(async () => {
  for (const app of apps) await app.close()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** The double with some capabilities overridden, recording the refs its sampling engines load. */
function declaring(name: string, over: Partial<EngineCapabilities>, loaded: AdapterRef[] = []) {
  const inner = createEngineDouble(name, over.snapshots)
  const provider: EngineProvider<typeof inner.configSchema> = {
    ...inner,
    capabilities: { ...inner.capabilities, ...over },
    async createSampling(opts, ctx) {
      const engine = await inner.createSampling!(opts, ctx)
      const load = engine.loadAdapter.bind(engine)
      engine.loadAdapter = (ref) => {
        loaded.push(ref)
        return load(ref)
      }
      return engine
    },
  }
  return provider
}

/** An app serving MODEL with the given training and sampling providers. */
async function boot(training: EngineProvider, sampling: EngineProvider = training): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-capabilities-'))
  dirs.push(dir)
  const options = { vocab_size: VOCAB, max_context: 128 }
  const config = await testConfig(dir, {
    supported_models: [
      {
        model_name: MODEL,
        model_path: dir,
        max_model_len: 128,
        max_lora_rank: 64,
        training: { provider: training.name, options },
        sampling: { provider: sampling.name, options },
      },
    ],
  })
  const registry = new EngineRegistry()
  registry.register(training)
  if (sampling !== training) registry.register(sampling)
  const app = await buildApp(config, { registry, configDir: dir })
  apps.push(app)
  await app.ready()
  await app.models.loadAll().catch(() => {})
  return listen(app)
}

async function settled(
  base: string,
  submitted: { status: number; text: string; json: { request_id: string } },
) {
  assert.equal(submitted.status, 200, submitted.text)
  const r = await result(base, ALICE, submitted.json.request_id)
  assert.equal(r.json.error, undefined, r.text)
  return r.json
}

async function createRun(base: string, rank = 4): Promise<{ session: string; run: string }> {
  const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank, seed: 1 } },
  })
  return { session, run: (await settled(base, created)).model_id }
}

/** One training step, then an ephemeral sampler of the run, and greedy tokens from it. */
async function trainAndSample(base: string): Promise<number[]> {
  const { run } = await createRun(base)
  await settled(base, await postFwdBwd(base, ALICE, ceRequest(run, 1, [3, 5, 7, 9, 11])))
  await settled(
    base,
    await call(base, 'POST', '/optim_step', {
      key: ALICE,
      json: { model_id: run, seq_id: 2, adam_params: { learning_rate: 0.5 } },
    }),
  )
  const saved = await settled(
    base,
    await call(base, 'POST', '/save_weights_for_sampler', {
      key: ALICE,
      json: { model_id: run, seq_id: 3, sampling_session_seq_id: 0 },
    }),
  )
  const sample = await call(base, 'POST', '/asample', {
    key: ALICE,
    json: {
      sampling_session_id: saved.sampling_session_id,
      num_samples: 1,
      prompt: { chunks: [{ tokens: [3] }] },
      sampling_params: { max_tokens: 6, temperature: 0 },
    },
  })
  return (await settled(base, sample)).sequences[0].tokens
}

test('snapshots stay in memory only where one provider declares it samples from them', async () => {
  const shared: AdapterRef[] = []
  const inMemory = await trainAndSample(await boot(declaring('shared', {}, shared)))
  assert.deepEqual(
    shared.map((r) => r.kind),
    ['snapshot'],
  )

  const files: AdapterRef[] = []
  const viaFiles = await trainAndSample(await boot(declaring('files', { snapshots: 'peft-files' }, files)))
  assert.equal(files.length, 1)
  assert.equal(files[0]!.kind, 'peft')
  assert.match((files[0] as { uri: string }).uri, /^file:\/\//)
  assert.deepEqual(viaFiles, inMemory, 'the same weights, whichever way they travelled')

  // Two provider objects cannot see each other's memory, whatever they declare.
  const other: AdapterRef[] = []
  const twoProviders = await trainAndSample(
    await boot(declaring('train', {}), declaring('sample', {}, other)),
  )
  assert.deepEqual(
    other.map((r) => r.kind),
    ['peft'],
  )
  assert.deepEqual(twoProviders, inMemory)
})

test('losses and ranks beyond the declaration are answered with a 400', async () => {
  const base = await boot(declaring('ce-only', { losses: ['cross_entropy'], maxLoraRank: 8 }))
  const { run } = await createRun(base)
  const rl = { ...ceRequest(run, 1, [3, 5, 7]), lossFn: 'importance_sampling' }
  assertError(await postFwdBwd(base, ALICE, rl), 400, /importance_sampling.*Supported: cross_entropy/)
  const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
  const tooLarge = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 16 } },
  })
  assertError(tooLarge, 400, /rank/)
})

test('a provider whose engine lacks what it declares fails at load; /readyz reports engine health', async () => {
  const inner = createEngineDouble('liar', 'peft-files')
  const liar = { ...inner, capabilities: { ...inner.capabilities, snapshots: 'shared-memory' as const } }
  const bad = await boot(liar)
  const notReady = await call(bad, 'GET', '/readyz')
  assert.equal(notReady.status, 503)
  assert.equal(notReady.json.models[0].state, 'failed')

  const good = declaring('healthy', {})
  const base = await boot(good)
  const ready = await call(base, 'GET', '/readyz')
  assert.equal(ready.status, 200, ready.text)
  assert.deepEqual(ready.json, {
    status: 'ready',
    models: [{ model_name: MODEL, state: 'ready', training: { ok: true }, sampling: { ok: true } }],
    store: { ok: true },
  })
})
