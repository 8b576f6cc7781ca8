// Builds the real app for tests: a temp checkpoint dir, two users (alice, bob), and the engine double
// registered under the name 'double' serving the base model 'test/bigram'.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../config/load.js'
import type { TuftConfig } from '../../config/schema.js'
import { EngineRegistry } from '../../core/registry.js'
import { buildApp } from '../../plugins/app.js'
import { createEngineDouble, type DoubleCall } from './engine-double.js'

export const ALICE = 'tml-alice-key'
export const BOB = 'tml-bob-key'
export const MODEL = 'test/bigram'
export const VOCAB = 32

export interface TestApp {
  app: FastifyInstance
  config: TuftConfig
  dir: string
  calls: DoubleCall[]
  close(): Promise<void>
}

export async function testConfig(
  dir: string,
  overrides: Record<string, unknown> = {},
  doubleOptions: Record<string, unknown> = {},
): Promise<TuftConfig> {
  const options = { vocab_size: VOCAB, max_context: 128, ...doubleOptions }
  return loadConfig({
    cwd: dir,
    env: {},
    overrides: {
      log_level: 'silent',
      checkpoint_dir: join(dir, 'checkpoints'),
      model_cache_dir: join(dir, 'models'),
      authorized_users: { [ALICE]: 'alice', [BOB]: 'bob' },
      supported_models: [
        {
          model_name: MODEL,
          model_path: dir,
          max_model_len: 128,
          max_lora_rank: 64,
          training: { provider: 'double', options },
          sampling: { provider: 'double', options },
        },
      ],
      ...overrides,
      server: {
        long_poll_timeout_ms: 2000,
        seq_gap_timeout_ms: 2000,
        ...((overrides.server as object) ?? {}),
      },
    },
  })
}

export async function startTestApp(
  overrides: Record<string, unknown> = {},
  doubleOptions: Record<string, unknown> = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-test-'))
  const config = await testConfig(dir, overrides, doubleOptions)
  const registry = new EngineRegistry()
  const double = createEngineDouble('double')
  registry.register(double)
  const app = await buildApp(config, { registry, configDir: dir })
  await app.ready()
  await app.models.loadAll()
  return {
    app,
    config,
    dir,
    calls: double.calls,
    async close() {
      await app.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
