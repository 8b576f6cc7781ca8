// The configuration signature through the real command: a store written under one model configuration
// refuses a boot under another (TUFT_CONFIG, exit code 2, the difference named), and
// `tuft clear-persistence --config` resets the namespace so that the new configuration boots.

import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { loadConfig } from '../config/load.js'
import { configSignature, signatureDifferences } from '../plugins/config-signature.js'
import { ALICE, MODEL } from './helpers/app.js'
import { freePort } from './helpers/redis.js'
import { runTuft, startTuft, writeTuftConfig } from './helpers/tuft-process.js'

test('signature facts: architecture from config.json, differences named field by field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-sig-'))
  try {
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ model_type: 'qwen3', hidden_size: 64, vocab_size: 99 }),
    )
    const load = (ratio?: number) =>
      loadConfig({
        cwd: dir,
        env: {},
        overrides: {
          supported_models: [
            { model_name: 'm', model_path: dir, ...(ratio ? { lora_alpha_ratio: ratio } : {}) },
          ],
        },
      })
    const a = configSignature(await load())
    assert.deepEqual(a['supported_models[m].architecture'], {
      model_type: 'qwen3',
      hidden_size: 64,
      vocab_size: 99,
    })
    const b = configSignature(await load(2))
    assert.deepEqual(signatureDifferences(a, b), [
      'supported_models[m].lora_alpha_ratio: null in the store, 2 configured',
    ])
    const embedded = configSignature(await loadConfig({ cwd: dir, env: {}, overrides: {} }))
    assert.deepEqual(Object.keys(embedded), ['embedded_model.model_name', 'embedded_model.generator_version'])
    await assert.rejects(
      loadConfig({ cwd: dir, env: {}, overrides: { persistence: { check_fields: ['NOPE'] } } }).then(
        configSignature,
      ),
      /check_fields: unknown field 'NOPE'/,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a changed model configuration stops the boot; clear-persistence resets the store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-sig-e2e-'))
  const port = await freePort()
  const persistence = { mode: 'file', file_path: join(dir, 'state') }
  const config = writeTuftConfig({ dir, port, persistence })
  try {
    // Some durable state under the first configuration.
    const server = await startTuft(config, dir)
    const alice = new ServiceClient({ baseUrl: server.baseUrl, apiKey: ALICE, telemetry: false })
    const training = await alice.createLoraTrainingClient(MODEL, { rank: 4 })
    await training.forwardBackward([datumFromTokens([1, 2, 3])], 'cross_entropy')
    await training.optimStep({ learning_rate: 0.1 })
    await alice.close()
    assert.equal(await server.stop(), 0)
    const userDir = join(dir, 'checkpoints', 'alice')
    assert.ok(existsSync(join(userDir, training.modelId, '_state')), 'the step left a durable state')

    // The model now uses another LoRA alpha rule: the saved adapters would mean something else.
    writeTuftConfig({ dir, port, persistence, model: { lora_alpha_ratio: 2 } })
    const refused = await runTuft(['--config', config], dir)
    assert.equal(refused.code, 2, refused.output)
    assert.match(
      refused.output,
      /TUFT_CONFIG: The persisted state was created under a different model configuration/,
    )
    assert.match(
      refused.output,
      /supported_models\[test\/bigram\]\.lora_alpha_ratio: null in the store, 2 configured/,
    )

    const cleared = await runTuft(['clear-persistence', '--config', config], dir)
    assert.equal(cleared.code, 0, cleared.output)
    assert.match(
      cleared.output,
      /cleared persistence namespace 'tuft' \(file\): \d+ records, 1 training states/,
    )
    assert.deepEqual(readdirSync(join(userDir, training.modelId)), [], 'durable states removed')

    const again = await startTuft(config, dir)
    const fresh = new ServiceClient({ baseUrl: again.baseUrl, apiKey: ALICE, telemetry: false })
    assert.equal(
      (await fresh.createRestClient().listTrainingRuns()).cursor.total_count,
      0,
      'a fresh namespace',
    )
    await fresh.close()
    assert.equal(await again.stop(), 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
