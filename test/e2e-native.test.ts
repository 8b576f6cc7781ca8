// End to end on the shipped defaults: `tuft` with no models configured serves the embedded tiny
// Qwen3 model on the native engine, to the local dev key only. The TS client trains it (loss falls),
// samples from the trained snapshot, and exports a training checkpoint as a PEFT archive.

import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { extract } from 'tar'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { EMBEDDED_MODEL_NAME, EMBEDDED_TOKENIZER_ID } from '../engines/embedded-model.js'
import { type SpawnedServer, spawnTuft } from './helpers/spawn.js'

const DEV_KEY = 'tml-local-dev-key'
const SEQUENCE = [9707, 11, 1879, 0, 576, 374, 264, 1273]
let server: SpawnedServer

before(async () => {
  server = await spawnTuft((dir) => ({
    checkpoint_dir: join(dir, 'checkpoints'),
    model_cache_dir: join(dir, 'models'),
    server: { long_poll_timeout_ms: 5000 },
  }))
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-2000))
})

test('the embedded model trains, samples and exports through the native engine', async () => {
  const client = new ServiceClient({ baseUrl: server.baseUrl, apiKey: DEV_KEY })
  try {
    const caps = await client.getServerCapabilities()
    assert.equal(caps.supported_models[0]?.model_name, EMBEDDED_MODEL_NAME)
    const training = await client.createLoraTrainingClient(EMBEDDED_MODEL_NAME, { rank: 8, seed: 1 })
    const info = await training.getInfo()
    assert.equal(info.model_data.tokenizer_id, EMBEDDED_TOKENIZER_ID)
    assert.equal(info.model_data.arch, 'qwen3')

    const datum = datumFromTokens(SEQUENCE)
    const losses: number[] = []
    for (let step = 0; step < 8; step++) {
      losses.push((await training.forwardBackward([datum], 'cross_entropy')).metrics['loss:sum']!)
      await training.optimStep({ learning_rate: 0.01 })
    }
    assert.ok(losses.at(-1)! < losses[0]! * 0.7, `loss fell from ${losses[0]} to ${losses.at(-1)}`)

    const sampler = await training.saveWeightsAndGetSamplingClient()
    // The Python SamplingClient.get_tokenizer() loads base_model up to its ':' from Hugging Face.
    const baseModel = (await sampler.getSampler()).base_model
    assert.equal(baseModel.split(':')[0], EMBEDDED_TOKENIZER_ID)
    const out = await sampler.sample(SEQUENCE.slice(0, 2), 2, { max_tokens: 4, temperature: 0, seed: 5 })
    assert.equal(out.sequences.length, 2)
    for (const s of out.sequences) {
      assert.equal(s.tokens.length, s.logprobs?.length)
      assert.ok(s.tokens.length > 0 && s.tokens.length <= 4)
    }
    const lp = await sampler.computeLogprobs(SEQUENCE)
    assert.equal(lp.length, SEQUENCE.length)
    assert.equal(lp[0], null)

    // A training checkpoint exports as a PEFT archive (adapter files at the root).
    const path = await training.saveState('native-ckpt')
    const archive = await client.createRestClient().getCheckpointArchiveUrlFromTinkerPath(path)
    const res = await fetch(archive.url)
    assert.equal(res.status, 200)
    const dir = mkdtempSync(join(tmpdir(), 'tuft-native-archive-'))
    writeFileSync(join(dir, 'a.tar.gz'), Buffer.from(await res.arrayBuffer()))
    await extract({ file: join(dir, 'a.tar.gz'), cwd: dir })
    const files = readdirSync(dir)
    assert.ok(files.includes('adapter_model.safetensors'), files.join(', '))
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as { r: number }
    assert.equal(config.r, 8)

    // Resume into a new run with the optimizer state: it continues from the trained weights.
    const resumed = await client.createTrainingClientFromState(path, { withOptimizer: true })
    const again = (await resumed.forward([datum], 'cross_entropy')).metrics['loss:sum']!
    assert.ok(Math.abs(again - losses.at(-1)!) < losses[0]! * 0.3, `resumed loss ${again}`)
  } finally {
    await client.close()
  }
})
