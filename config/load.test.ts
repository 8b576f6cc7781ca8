// Tests for config loading: search places, interpolation, defaults, unknown keys, TuFT compatibility.
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { TSchema } from '@sinclair/typebox'
import { parse as parseYaml } from 'yaml'
import { isTuftError } from '../core/errors.js'
import { loadConfig } from './load.js'
import { TuftConfigSchema } from './schema.js'

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tuft-config-'))
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (err) {
    return err as Error
  }
  assert.fail('expected a rejection')
}

test('no config file: every default', async () => {
  const config = await loadConfig({ cwd: tempDir(), env: {} })
  assert.equal(config.host, '127.0.0.1')
  assert.equal(config.port, 10610)
  assert.deepEqual(config.supported_models, [])
  assert.equal(config.persistence.mode, 'memory')
  assert.equal(config.server.body_limit_bytes, 64 * 1024 * 1024)
  assert.ok(config.checkpoint_dir.startsWith('/'))
  assert.ok(Object.isFrozen(config.server))
})

test('finds .tuftrc.yaml in the working directory and resolves paths against it', async () => {
  const dir = tempDir()
  writeFileSync(join(dir, '.tuftrc.yaml'), 'port: 9000\ncheckpoint_dir: ./ckpt\n')
  const config = await loadConfig({ cwd: dir, env: {} })
  assert.equal(config.port, 9000)
  assert.equal(config.checkpoint_dir, join(dir, 'ckpt'))
})

test('tuft.config.json is found too', async () => {
  const dir = tempDir()
  writeFileSync(join(dir, 'tuft.config.json'), JSON.stringify({ log_level: 'debug' }))
  assert.equal((await loadConfig({ cwd: dir, env: {} })).log_level, 'debug')
})

test('${env:NAME} interpolation, with fallback, and a clear error when unset', async () => {
  const dir = tempDir()
  const file = join(dir, 'c.yaml')
  writeFileSync(
    file,
    'persistence:\n  mode: redis\n  redis_url: ${env:REDIS_URL}\n  namespace: ${env:NS:-dflt}\n',
  )
  const config = await loadConfig({ configPath: file, env: { REDIS_URL: 'redis://h:1/0' } })
  assert.equal(config.persistence.redis_url, 'redis://h:1/0')
  assert.equal(config.persistence.namespace, 'dflt')
  const err = await rejection(loadConfig({ configPath: file, env: {} }))
  assert.ok(isTuftError(err) && err.code === 'TUFT_CONFIG')
  assert.match(err.message, /\/persistence\/redis_url: environment variable REDIS_URL is not set/)
})

test('unknown keys are rejected with their path', async () => {
  const dir = tempDir()
  const file = join(dir, 'c.yaml')
  writeFileSync(
    file,
    'prot: 1\nsupported_models:\n  - model_name: m\n    model_path: /m\n    max_lora_rnk: 8\n',
  )
  const err = await rejection(loadConfig({ configPath: file, env: {} }))
  assert.match(err.message, /\/prot: unknown key/)
  assert.match(err.message, /\/supported_models\/0\/max_lora_rnk: unknown key/)
})

test('a long-poll window that would make clients spin is refused', async () => {
  const err = await rejection(
    loadConfig({ cwd: tempDir(), env: {}, overrides: { server: { long_poll_timeout_ms: 0 } } }),
  )
  assert.match(err.message, /\/server\/long_poll_timeout_ms: /)
})

test('wrong types name the key', async () => {
  const dir = tempDir()
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'port: high\n')
  const err = await rejection(loadConfig({ configPath: file, env: {} }))
  assert.match(err.message, /\/port: /)
})

test('a missing explicit file is a config error naming it', async () => {
  const err = await rejection(loadConfig({ configPath: '/nonexistent/tuft.yaml', env: {} }))
  assert.ok(isTuftError(err) && err.code === 'TUFT_CONFIG')
  assert.match(err.message, /\/nonexistent\/tuft\.yaml/)
})

test('overrides (CLI flags) win over the file', async () => {
  const dir = tempDir()
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'port: 9000\nhost: 0.0.0.0\n')
  const config = await loadConfig({ configPath: file, env: {}, overrides: { port: 9100 } })
  assert.equal(config.port, 9100)
  assert.equal(config.host, '0.0.0.0')
})

test('a TuFT tuft_config.yaml loads unchanged', async () => {
  const dir = tempDir()
  const file = join(dir, 'tuft_config.yaml')
  writeFileSync(
    file,
    [
      'checkpoint_dir: ~/.cache/tuft/checkpoints',
      'model_owner: local-user',
      'supported_models:',
      '  - model_name: Qwen/Qwen3-4B',
      '    model_path: Qwen/Qwen3-4B',
      '    max_model_len: 32768',
      '    tensor_parallel_size: 1',
      '    temperature: 0.7',
      '    top_p: 1.0',
      '    top_k: -1',
      '    max_lora_rank: 16',
      '    max_loras: 1',
      'authorized_users:',
      '  tml-dev-key: local-user',
      'persistence:',
      '  mode: DISABLE',
      '  future_ttl_seconds: 86400',
      'telemetry:',
      '  enabled: false',
      '  service_name: tuft',
      '  resource_attributes: {}',
    ].join('\n'),
  )
  const config = await loadConfig({ configPath: file, env: {} })
  assert.equal(config.supported_models[0]?.max_lora_rank, 16)
  assert.equal(config.supported_models[0]?.training.provider, 'native')
  assert.equal(config.persistence.mode, 'DISABLE')
})

/** Every key path of the schema, e.g. server.long_poll_timeout_ms, supported_models.training.options. */
function schemaKeys(schema: TSchema, prefix: string): string[] {
  if (schema.type === 'array' && schema.items) return schemaKeys(schema.items as TSchema, prefix)
  if (schema.type !== 'object' || !schema.properties) return []
  return Object.entries(schema.properties as Record<string, TSchema>).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key
    return [path, ...schemaKeys(child, path)]
  })
}

function documentedKeys(node: unknown, prefix: string): string[] {
  if (Array.isArray(node)) return node.flatMap((item) => documentedKeys(item, prefix))
  if (node === null || typeof node !== 'object') return []
  return Object.entries(node).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key
    return [path, ...documentedKeys(child, path)]
  })
}

test('config/example.yaml documents every key and loads', async () => {
  const examplePath = new URL('./example.yaml', import.meta.url).pathname
  const { readFileSync } = await import('node:fs')
  const documented = new Set(documentedKeys(parseYaml(readFileSync(examplePath, 'utf8')), ''))
  const missing = schemaKeys(TuftConfigSchema, '').filter((key) => !documented.has(key))
  assert.deepEqual(missing, [])
  const config = await loadConfig({ configPath: examplePath, env: {} })
  assert.equal(config.authorized_users['tml-alice-0123456789'], 'alice')
})

test('limits: per_user defaults, per-user overrides without defaults, bad values named by path', async () => {
  const config = await loadConfig({
    cwd: tempDir(),
    env: {},
    overrides: { limits: { per_user: { max_sessions: 5 }, users: { bob: { max_training_runs: null } } } },
  })
  assert.equal(config.limits.per_user.max_sessions, 5)
  assert.equal(config.limits.per_user.max_training_runs, 32)
  // An override names only what differs: bob keeps per_user's other limits.
  assert.deepEqual(config.limits.users.bob, { max_training_runs: null })
  for (const [limits, path] of [
    [{ users: { bob: { max_sessions: -1 } } }, /limits\/users\/bob\/max_sessions/],
    [{ per_user: { max_turns: 3 } }, /limits\/per_user/],
    [{ per_user: { weight: 0 } }, /limits\/per_user\/weight/],
  ] as const) {
    const err = await rejection(loadConfig({ cwd: tempDir(), env: {}, overrides: { limits } }))
    assert.ok(isTuftError(err) && err.code === 'TUFT_CONFIG', String(err))
    assert.match(err.message, path)
  }
})
