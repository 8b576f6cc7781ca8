// End to end: the real `tuft` process on loopback, driven by the TypeScript client through the whole
// quick start, with the engine double loaded as a third-party provider module. Asserts real learning
// (loss falls) and real sampling (the trained adapter reproduces the learned sequence).

import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { extract } from 'tar'
import { APIStatusError, datumFromTokens, ServiceClient } from '../client/index.js'
import { ALICE, BOB, MODEL } from './helpers/app.js'
import { type SpawnedServer, spawnTuft } from './helpers/spawn.js'

const SEQUENCE = [1, 2, 3, 4, 5, 6, 7, 8, 9]
let server: SpawnedServer

before(async () => {
  server = await spawnTuft()
})

after(async () => {
  const code = await server.stop()
  assert.equal(code, 0, `graceful shutdown exit code (output:\n${server.output().slice(-2000)})`)
  assert.ok(!server.output().includes(ALICE), 'API keys never appear in the log')
  assert.ok(!server.output().includes('checkpoint_archives/'), 'signed archive links never appear in the log')
})

test('quick start through the TypeScript client', async () => {
  const alice = new ServiceClient({ baseUrl: server.baseUrl, apiKey: ALICE, userMetadata: { recipe: 'e2e' } })
  const bob = new ServiceClient({ baseUrl: server.baseUrl, apiKey: BOB })
  try {
    const caps = await alice.getServerCapabilities()
    assert.deepEqual(caps.supported_models, [{ model_name: MODEL, max_context_length: 128 }])

    const training = await alice.createLoraTrainingClient(MODEL, {
      rank: 8,
      seed: 3,
      userMetadata: { renderer_name: 'plain' },
    })
    const info = await training.getInfo()
    assert.equal(info.model_data.model_name, MODEL)
    assert.equal(info.lora_rank, 8)

    // Learn the sequence: the summed cross-entropy must fall well below where it started.
    const datum = datumFromTokens(SEQUENCE)
    const losses: number[] = []
    for (let step = 0; step < 12; step++) {
      const out = await training.forwardBackward([datum], 'cross_entropy')
      assert.equal(out.outputs.length, 1)
      assert.deepEqual(out.outputs[0]!.logprobs!.shape, [SEQUENCE.length - 1])
      losses.push(out.metrics['loss:sum']!)
      const optim = await training.optimStep({ learning_rate: 0.2 })
      assert.ok(optim.metrics && optim.metrics['grad_norm:mean']! > 0)
    }
    assert.ok(losses.at(-1)! < losses[0]! / 4, `loss fell from ${losses[0]} to ${losses.at(-1)}`)

    // save_state, then the ephemeral sampler: greedy sampling reproduces the learned continuation.
    const statePath = await training.saveState('step-12')
    assert.match(statePath, /^tinker:\/\/s-[0-9a-f]+:train:0\/weights\/step-12$/)
    const sampler = await training.saveWeightsAndGetSamplingClient()
    const greedy = await sampler.sample([1], 2, { max_tokens: 8, temperature: 0 })
    assert.equal(greedy.sequences.length, 2)
    // SDK ≥ 0.26: each sequence carries its own id from the asample future.
    const ids = greedy.sequences.map((s) => s.sequenceId)
    assert.ok(ids.every((id) => typeof id === 'string') && new Set(ids).size === 2, `ids ${ids}`)
    for (const s of greedy.sequences) {
      assert.deepEqual(s.tokens, SEQUENCE.slice(1))
      assert.equal(s.logprobs?.length, 8)
      assert.equal(s.stopReason, 'length')
    }
    const stopped = await sampler.sample([1], 1, { max_tokens: 8, temperature: 0, stop: [4] })
    assert.deepEqual(stopped.sequences[0]!.tokens, [2, 3, 4])
    assert.equal(stopped.sequences[0]!.stopReason, 'stop')
    assert.equal(await sampler.getBaseModel(), MODEL)

    // compute_logprobs: the trained adapter beats the base model on the learned sequence.
    const trainedLp = await sampler.computeLogprobs(SEQUENCE)
    const base = await alice.createSamplingClient({ baseModel: MODEL })
    const baseLp = await base.computeLogprobs(SEQUENCE)
    assert.equal(trainedLp[0], null)
    const sum = (xs: Array<number | null>) => xs.reduce<number>((a, b) => a + (b ?? 0), 0)
    assert.ok(sum(trainedLp) > sum(baseLp) + 5, `trained ${sum(trainedLp)} vs base ${sum(baseLp)}`)

    // load_state into a new run (with optimizer): it starts where the first one was.
    const resumed = await alice.createTrainingClientFromState(statePath, { withOptimizer: true })
    const check = await resumed.forward([datum], 'cross_entropy')
    assert.ok(Math.abs(check.metrics['loss:sum']! - losses.at(-1)!) < losses[0]! / 4)
    await resumed.loadState(statePath)

    // Named sampler checkpoint, sampled through a path-based sampling session.
    const samplerPath = await training.saveWeightsForSampler('final')
    const fromPath = await alice.createSamplingClient({ modelPath: samplerPath })
    assert.deepEqual(
      (await fromPath.sample([1], 1, { max_tokens: 8, temperature: 0 })).sequences[0]!.tokens,
      SEQUENCE.slice(1),
    )

    // REST: session, runs and checkpoint listings.
    const rest = alice.createRestClient()
    const session = await rest.getSession(await alice.getSessionId())
    assert.equal(session.training_run_ids.length, 2)
    assert.ok(session.sampler_ids.length >= 3)
    const runs = await rest.listTrainingRuns()
    assert.equal(runs.cursor.total_count, 2)
    const run = await rest.getTrainingRun(training.modelId)
    assert.deepEqual(run.user_metadata, { renderer_name: 'plain' })
    assert.equal(run.last_checkpoint?.checkpoint_id, 'weights/step-12')
    assert.equal(run.last_sampler_checkpoint?.checkpoint_id, 'sampler_weights/final')
    const ckpts = await rest.listCheckpoints(training.modelId)
    assert.deepEqual(ckpts.checkpoints.map((c) => c.checkpoint_id).sort(), [
      'sampler_weights/final',
      'weights/step-12',
    ])
    assert.equal((await rest.listUserCheckpoints()).cursor?.total_count, 2)

    // Publish: bob can read the checkpoint only while it is published.
    const bobRest = bob.createRestClient()
    await assert.rejects(
      bobRest.getWeightsInfoByTinkerPath(statePath),
      (e) => e instanceof APIStatusError && e.status === 404,
    )
    await rest.publishCheckpointFromTinkerPath(statePath)
    await rest.publishCheckpointFromTinkerPath(statePath)
    assert.equal((await bobRest.getWeightsInfoByTinkerPath(statePath)).lora_rank, 8)
    const bobResumed = await bob.createTrainingClientFromState(statePath)
    assert.ok((await bobResumed.forward([datum], 'cross_entropy')).metrics['loss:sum']! < losses[0]! / 2)
    await rest.unpublishCheckpointFromTinkerPath(statePath)
    await assert.rejects(
      bobRest.getWeightsInfoByTinkerPath(statePath),
      (e) => e instanceof APIStatusError && e.status === 404,
    )

    // Archive: a 302 to a signed URL, fetched without any key; a real .tar.gz with the PEFT files at its root.
    const archive = await rest.getCheckpointArchiveUrlFromTinkerPath(samplerPath)
    const res = await fetch(archive.url)
    assert.equal(res.status, 200)
    const out = mkdtempSync(join(tmpdir(), 'tuft-archive-'))
    const file = join(out, 'adapter.tar.gz')
    writeFileSync(file, Buffer.from(await res.arrayBuffer()))
    await extract({ file, cwd: out })
    assert.deepEqual(readdirSync(out).sort(), [
      'adapter.tar.gz',
      'adapter_config.json',
      'adapter_model.safetensors',
    ])
    const adapterConfig = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as {
      r: number
      lora_alpha: number
    }
    assert.equal(adapterConfig.r, 8)
    assert.equal(adapterConfig.lora_alpha, 32)
    const tampered = archive.url.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))
    assert.equal((await fetch(tampered)).status, 404)

    // TTL: an expired checkpoint disappears from listings and stops resolving.
    await rest.setCheckpointTtlFromTinkerPath(samplerPath, 1)
    assert.ok(
      (await rest.listCheckpoints(training.modelId)).checkpoints.find(
        (c) => c.checkpoint_id === 'sampler_weights/final',
      )?.expires_at,
    )
    await new Promise((r) => setTimeout(r, 1100))
    assert.deepEqual(
      (await rest.listCheckpoints(training.modelId)).checkpoints.map((c) => c.checkpoint_id),
      ['weights/step-12'],
    )
    await assert.rejects(
      alice.createSamplingClient({ modelPath: samplerPath }),
      (e) => e instanceof APIStatusError && e.status === 404,
    )
    await rest.setCheckpointTtlFromTinkerPath(statePath, null)

    // Delete.
    await rest.deleteCheckpointFromTinkerPath(statePath)
    assert.equal((await rest.listCheckpoints(training.modelId)).checkpoints.length, 0)
  } finally {
    await alice.close()
    await bob.close()
  }
})
