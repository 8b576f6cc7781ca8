// Samplers own their adapter files: one created from a checkpoint path keeps sampling the same tokens
// after the checkpoint is deleted, after the engine unloaded its adapter, and after a restart on the file
// store; an ephemeral sampler (save_weights_and_get_sampling_client) survives a restart on a durable
// store through its background PEFT export. The files go when the sampler's session expires; files a crash
// left unrecorded are swept once old.

import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { keys } from '../core/domain/keys.js'
import type { SamplerRecord } from '../core/domain/sampler.js'
import { EngineRegistry } from '../core/registry.js'
import { SAMPLERS_DIR } from '../core/services/sampler-files.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, MODEL, testConfig, VOCAB } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

interface Server {
  app: FastifyInstance
  base: string
}

/** Boots the app on `dir` (file store there): a second boot on the same dir is a restart. */
async function boot(dir: string): Promise<Server> {
  const options = { vocab_size: VOCAB, max_context: 128 }
  const config = await testConfig(dir, {
    persistence: { mode: 'file', file_path: join(dir, 'state') },
    supported_models: [
      {
        model_name: MODEL,
        model_path: dir,
        max_model_len: 128,
        // One resident sampler adapter: sampling from a second one unloads the first.
        max_loras: 1,
        training: { provider: 'double', options },
        sampling: { provider: 'double', options },
      },
    ],
  })
  const registry = new EngineRegistry()
  registry.register(createEngineDouble('double'))
  const app = await buildApp(config, { registry, configDir: dir })
  await app.ready()
  await app.models.loadAll()
  return { app, base: await listen(app) }
}

async function settled(base: string, submitted: { json: { request_id: string } }) {
  const r = await result(base, ALICE, submitted.json.request_id)
  assert.equal(r.status, 200, r.text)
  assert.equal(r.json.error, undefined, r.text)
  return r.json
}

/** A session and a run trained a few steps, so its adapter differs from the base model. */
async function trainedRun(base: string): Promise<{ session: string; run: string }> {
  const session = (await call(base, 'POST', '/create_session', { key: ALICE, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key: ALICE,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4, seed: 1 } },
  })
  const run = created.json.model_id
  await settled(base, created)
  for (let step = 0; step < 3; step++) {
    await settled(base, await postFwdBwd(base, ALICE, ceRequest(run, 2 * step + 1, [3, 5, 7, 9, 11])))
    const optim = await call(base, 'POST', '/optim_step', {
      key: ALICE,
      json: { model_id: run, seq_id: 2 * step + 2, adam_params: { learning_rate: 0.5 } },
    })
    await settled(base, optim)
  }
  return { session, run }
}

async function samplerFrom(base: string, session: string, seq: number, modelPath: string): Promise<string> {
  const created = await call(base, 'POST', '/create_sampling_session', {
    key: ALICE,
    json: { session_id: session, sampling_session_seq_id: seq, model_path: modelPath },
  })
  assert.equal(created.status, 200, created.text)
  return created.json.sampling_session_id
}

async function sampleTokens(base: string, sampler: string): Promise<number[]> {
  const submitted = await call(base, 'POST', '/asample', {
    key: ALICE,
    json: {
      sampling_session_id: sampler,
      num_samples: 1,
      prompt: { chunks: [{ tokens: [3] }] },
      sampling_params: { max_tokens: 8, temperature: 1, seed: 7 },
    },
  })
  assert.equal(submitted.status, 200, submitted.text)
  return (await settled(base, submitted)).sequences[0].tokens
}

async function saveForSampler(base: string, run: string, seq: number, body: Record<string, unknown>) {
  const f = await call(base, 'POST', '/save_weights_for_sampler', {
    key: ALICE,
    json: { model_id: run, seq_id: seq, ...body },
  })
  return settled(base, f)
}

test('a sampler from a checkpoint path outlives the checkpoint, an unloaded adapter and a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-samplers-'))
  let server = await boot(dir)
  try {
    const { session, run } = await trainedRun(server.base)
    const path = (await saveForSampler(server.base, run, 7, { path: 'deleted' })).path
    const sampler = await samplerFrom(server.base, session, 0, path)
    const expected = await sampleTokens(server.base, sampler)
    const baseline = await call(server.base, 'POST', '/create_sampling_session', {
      key: ALICE,
      json: { session_id: session, sampling_session_seq_id: 1, base_model: MODEL },
    })
    assert.notDeepEqual(
      await sampleTokens(server.base, baseline.json.sampling_session_id),
      expected,
      'the trained adapter changes what is sampled',
    )

    const deleted = await call(
      server.base,
      'DELETE',
      `/training_runs/${run}/checkpoints/sampler_weights/deleted`,
      {
        key: ALICE,
      },
    )
    assert.equal(deleted.status, 204)
    assert.ok(
      !existsSync(join(dir, 'checkpoints', encodeURIComponent('alice'), run, 'sampler_weights', 'deleted')),
    )
    assert.deepEqual(await sampleTokens(server.base, sampler), expected, 'while its adapter is resident')

    // Another adapter takes the only slot: the first one is unloaded and must be read from disk again.
    const other = await samplerFrom(
      server.base,
      session,
      2,
      (await saveForSampler(server.base, run, 8, { path: 'other' })).path,
    )
    await sampleTokens(server.base, other)
    assert.deepEqual(await sampleTokens(server.base, sampler), expected, 'reloaded from its own files')

    await server.app.close()
    server = await boot(dir)
    assert.deepEqual(await sampleTokens(server.base, sampler), expected, 'after a restart')
  } finally {
    await server.app.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an ephemeral sampler survives a restart on the file store; session expiry removes sampler files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-samplers-'))
  let server = await boot(dir)
  try {
    const { session, run } = await trainedRun(server.base)
    const sampler = (await saveForSampler(server.base, run, 7, { sampling_session_seq_id: 0 }))
      .sampling_session_id
    const expected = await sampleTokens(server.base, sampler)
    const fromPath = await samplerFrom(
      server.base,
      session,
      1,
      (await saveForSampler(server.base, run, 8, { path: 'kept' })).path,
    )
    const expectedFromPath = await sampleTokens(server.base, fromPath)

    // A graceful shutdown waits for the background export; after it the record names the copy.
    await server.app.close()
    server = await boot(dir)
    const record = (await server.app.store.get<SamplerRecord>(keys.sampler(sampler)))!.value
    assert.equal(record.source.kind, 'snapshot')
    assert.ok(record.source.kind === 'snapshot' && record.source.dir?.startsWith(SAMPLERS_DIR))
    assert.deepEqual(await sampleTokens(server.base, sampler), expected, 'loaded from its PEFT copy')
    assert.deepEqual(await sampleTokens(server.base, fromPath), expectedFromPath)

    // A snapshot whose export has not landed (it is under way in another process, or was lost): retry
    // for a while, then 404.
    const pending = {
      ...record,
      id: `${session}:sample:9`,
      seqId: 9,
      source: { kind: 'snapshot', runId: run, writing: true },
    }
    const ask = async (createdAt: number) => {
      await server.app.store.put(keys.sampler(pending.id), { ...pending, createdAt })
      return call(server.base, 'POST', '/asample', {
        key: ALICE,
        json: {
          sampling_session_id: pending.id,
          num_samples: 1,
          prompt: { chunks: [{ tokens: [3] }] },
          sampling_params: {},
        },
      })
    }
    assert.equal((await ask(Date.now())).status, 503)
    assert.equal((await ask(Date.now() - 120_000)).status, 404)

    const owned = join(dir, 'checkpoints', SAMPLERS_DIR)
    assert.equal(readdirSync(owned).length, 2, 'one directory per sampler with files')
    assert.deepEqual(await server.app.tuft.sessions.reap(Date.now() + 3600_000), [session])
    await server.app.tuft.samplers.close()
    assert.deepEqual(readdirSync(owned), [], 'the expired session left no sampler files')
    const refused = await call(server.base, 'POST', '/asample', {
      key: ALICE,
      json: {
        sampling_session_id: sampler,
        num_samples: 1,
        prompt: { chunks: [{ tokens: [3] }] },
        sampling_params: { max_tokens: 2 },
      },
    })
    assert.equal(refused.status, 404)
    assert.match(refused.json.detail, /expired session/)
    assert.ok(
      existsSync(join(dir, 'checkpoints', 'alice', run, 'sampler_weights', 'kept')),
      'checkpoints stay',
    )
  } finally {
    await server.app.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('sampler files a crash left unrecorded are swept once old; recorded and recent ones stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-samplers-'))
  const server = await boot(dir)
  try {
    const { session, run } = await trainedRun(server.base)
    const sampler = await samplerFrom(
      server.base,
      session,
      0,
      (await saveForSampler(server.base, run, 7, { path: 'kept' })).path,
    )
    const record = (await server.app.store.get<SamplerRecord>(keys.sampler(sampler)))!.value
    assert.ok(record.source.kind === 'checkpoint')
    const owned = join(dir, 'checkpoints', SAMPLERS_DIR)
    // What a crash leaves: a half-filled temp directory and a published one never recorded.
    for (const name of ['.tmp-0123', `${encodeURIComponent(sampler)}.deadbeef`, 'recent.cafe0123']) {
      mkdirSync(join(owned, name))
      writeFileSync(join(owned, name, 'adapter_model.safetensors'), 'x')
    }
    const longAgo = new Date(Date.now() - 2 * 3600_000)
    for (const name of [
      '.tmp-0123',
      `${encodeURIComponent(sampler)}.deadbeef`,
      record.source.dir.slice(SAMPLERS_DIR.length + 1),
    ])
      utimesSync(join(owned, name), longAgo, longAgo)

    const removed = await server.app.tuft.samplers.sweepOrphanFiles(Date.now() - 3600_000)
    assert.deepEqual(
      removed.sort(),
      [join(SAMPLERS_DIR, '.tmp-0123'), join(SAMPLERS_DIR, `${encodeURIComponent(sampler)}.deadbeef`)].sort(),
    )
    assert.deepEqual(
      readdirSync(owned).sort(),
      [record.source.dir.slice(SAMPLERS_DIR.length + 1), 'recent.cafe0123'].sort(),
      'the recorded directory (however old) and a recent unrecorded one stay',
    )
    assert.equal((await sampleTokens(server.base, sampler)).length > 0, true, 'the sampler still samples')
  } finally {
    await server.app.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
