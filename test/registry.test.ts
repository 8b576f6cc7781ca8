// Engine provider registry and model hosts: built-in and lazy providers, duplicates, third-party
// modules by specifier, unknown names, invalid declarations and invalid options failing with TUFT_CONFIG.

import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { pino } from 'pino'
import type { ModelConfig } from '../config/schema.js'
import type { EngineProvider } from '../core/engine.js'
import { isTuftError } from '../core/errors.js'
import { EventBus } from '../core/events.js'
import { EngineRegistry, providerProblems } from '../core/registry.js'
import { ModelHost } from '../core/services/models.js'
import { createEngineDouble } from './helpers/engine-double.js'

const HERE = new URL('.', import.meta.url).pathname
const isConfigError = (e: unknown) => isTuftError(e) && e.code === 'TUFT_CONFIG'

test('duplicate provider names throw', () => {
  const registry = new EngineRegistry()
  registry.register(createEngineDouble('x'))
  assert.throws(() => registry.register(createEngineDouble('x')), isConfigError)
  assert.throws(() => registry.registerLazy('x', async () => createEngineDouble('x')), isConfigError)
})

test('lazy built-ins load once, on first use', async () => {
  const registry = new EngineRegistry()
  let loads = 0
  registry.registerLazy('lazy', async () => {
    loads++
    return createEngineDouble('lazy')
  })
  assert.equal(loads, 0)
  const a = await registry.resolve('lazy', HERE)
  const b = await registry.resolve('lazy', HERE)
  assert.equal(a, b)
  assert.equal(loads, 1)
})

test('third-party providers load by module specifier, relative to the config directory', async () => {
  const registry = new EngineRegistry()
  const provider = await registry.resolve('./helpers/engine-double-provider.ts', HERE)
  assert.equal(provider.name, 'engine-double-module')
  assert.equal(await registry.resolve('./helpers/engine-double-provider.ts', HERE), provider)
})

test('unknown providers and modules without a provider fail with TUFT_CONFIG', async () => {
  const registry = new EngineRegistry()
  await assert.rejects(
    registry.resolve('no-such-engine-package', HERE),
    (e) => isConfigError(e) && /Unknown engine provider/.test((e as Error).message),
  )
  const dir = mkdtempSync(join(tmpdir(), 'tuft-registry-'))
  writeFileSync(join(dir, 'not-a-provider.mjs'), 'export default { hello: 1 }\n')
  await assert.rejects(
    registry.resolve('./not-a-provider.mjs', dir),
    (e) => isConfigError(e) && /does not default-export/.test((e as Error).message),
  )
})

test('providers are checked against the capability declaration, naming each problem', () => {
  const double = createEngineDouble('x')
  // The declaration before capabilities were an object: a list of roles.
  const legacy = { ...double, capabilities: ['training', 'sampling'] } as unknown as EngineProvider
  assert.deepEqual(providerProblems(legacy), [
    'capabilities must be an object (snapshots, sampleFromTrainingSnapshot, losses, ...)',
  ])
  const caps = double.capabilities
  const wrong = {
    ...double,
    capabilities: { ...caps, snapshots: 'peft-files', losses: ['cross_entropy', 'kl'], maxLoraRank: 0 },
  } as unknown as EngineProvider
  assert.deepEqual(providerProblems(wrong), [
    "capabilities.sampleFromTrainingSnapshot needs snapshots: 'shared-memory'",
    'capabilities.losses must list losses among cross_entropy, importance_sampling, ppo, cispo, dro',
    'capabilities.maxLoraRank must be a positive integer',
  ])
  assert.throws(
    () => new EngineRegistry().register(wrong),
    (e) => isConfigError(e) && /is invalid: capabilities/.test((e as Error).message),
  )
})

function host(registry: EngineRegistry, options: Record<string, unknown>): ModelHost {
  const config = {
    model_name: 'm',
    model_path: '/nonexistent',
    tensor_parallel_size: 1,
    capabilities: ['training', 'sampling'],
    max_lora_rank: 16,
    training: { provider: 'double', options },
    sampling: { provider: 'double', options },
  } satisfies ModelConfig
  return new ModelHost({
    config,
    registry,
    configDir: HERE,
    log: pino({ level: 'silent' }),
    events: new EventBus(),
    maxBatchTokens: 100,
  })
}

test('model hosts check engine options against the provider schema and report readiness', async () => {
  const registry = new EngineRegistry()
  registry.register(createEngineDouble('double'))
  const bad = host(registry, { vocab_size: 'many' })
  await assert.rejects(
    bad.load(),
    (e) => isConfigError(e) && /invalid options for engine 'double'/.test((e as Error).message),
  )
  assert.equal(bad.state, 'failed')
  await assert.rejects(bad.whenReady(), (e) => isTuftError(e) && e.statusCode === 503)

  const good = host(registry, { vocab_size: 16 })
  assert.throws(
    () => good.info(),
    (e) => isTuftError(e) && e.statusCode === 503,
  )
  await good.load()
  assert.equal(good.state, 'ready')
  assert.equal(good.info().vocabSize, 16)
  assert.equal(good.maxContext(), 512)
  assert.equal(good.loraAlpha(8), 32)
  await good.close()
})
