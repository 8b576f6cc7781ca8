// What a crash during a save leaves in a run's checkpoint directory (the temp dir being filled, the
// replaced copy of an overwritten checkpoint, a half-written durable state) and sampler files no record
// names are removed at the next boot (the store is not shared: whatever predates the boot); saved
// checkpoints and the run's durable state stay, and a temp dir newer than the cutoff is kept.

import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { EngineRegistry } from '../core/registry.js'
import { STATE_DIR } from '../core/services/durable-state.js'
import { SAMPLERS_DIR } from '../core/services/sampler-files.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, MODEL, testConfig } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

/** Boots the app on `dir` with the file store there: a second boot on the same dir is a restart. */
async function boot(dir: string): Promise<{ app: FastifyInstance; base: string }> {
  const config = await testConfig(dir, { persistence: { mode: 'file', file_path: join(dir, 'state') } })
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

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s')
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('checkpoint temp dirs and sampler files a crash left are removed at boot; checkpoints and durable state stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-leftovers-'))
  let server = await boot(dir)
  try {
    const session = (await call(server.base, 'POST', '/create_session', { key: ALICE, json: {} })).json
      .session_id
    const created = await call(server.base, 'POST', '/create_model', {
      key: ALICE,
      json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4, seed: 1 } },
    })
    const run: string = created.json.model_id
    await settled(server.base, created)
    await settled(server.base, await postFwdBwd(server.base, ALICE, ceRequest(run, 1, [3, 5, 7])))
    await settled(
      server.base,
      await call(server.base, 'POST', '/optim_step', {
        key: ALICE,
        json: { model_id: run, seq_id: 2, adam_params: { learning_rate: 0.5 } },
      }),
    )
    const saved = await settled(
      server.base,
      await call(server.base, 'POST', '/save_weights', {
        key: ALICE,
        json: { model_id: run, seq_id: 3, path: 'kept' },
      }),
    )
    await server.app.close()

    // What a crash during saves leaves: temp dirs with partial files, the old copy of an overwrite.
    const runDir = join(dir, 'checkpoints', 'alice', run)
    const stateDir = join(runDir, STATE_DIR)
    const states = readdirSync(stateDir)
    assert.equal(states.length, 1, 'the save is the run’s durable state')
    // And sampler files never recorded: a temp dir, a published dir whose record was not written.
    const samplersDir = join(dir, 'checkpoints', SAMPLERS_DIR)
    mkdirSync(samplersDir, { recursive: true })
    for (const leftover of [
      join(runDir, '.tmp-a1'),
      join(runDir, '.old-b2'),
      join(stateDir, '.tmp-c3'),
      join(samplersDir, '.tmp-d4'),
      join(samplersDir, 'ghost.e5'),
    ]) {
      mkdirSync(leftover)
      writeFileSync(join(leftover, 'adapter_model.safetensors'), 'partial')
    }

    server = await boot(dir)
    await until(() => !readdirSync(runDir).some((n) => n.startsWith('.')))
    await until(() => readdirSync(stateDir).length === 1)
    await until(() => readdirSync(samplersDir).length === 0)
    assert.deepEqual(readdirSync(runDir).sort(), [STATE_DIR, 'weights'])
    assert.deepEqual(readdirSync(stateDir), states, 'the durable state stays')
    assert.ok(existsSync(join(runDir, 'weights', 'kept', 'adapter_model.safetensors')))

    // The run goes on from its durable state and its checkpoint still loads.
    const loaded = await call(server.base, 'POST', '/load_weights', {
      key: ALICE,
      json: { model_id: run, seq_id: 4, path: saved.path, optimizer: true },
    })
    await settled(server.base, loaded)

    // A temp dir newer than the cutoff may be a save under way: it stays.
    mkdirSync(join(runDir, '.tmp-now'))
    assert.deepEqual(await server.app.tuft.checkpoints.sweepLeftovers(Date.now() - 60_000), [])
    assert.ok(existsSync(join(runDir, '.tmp-now')))
    assert.deepEqual(await server.app.tuft.checkpoints.sweepLeftovers(Date.now() + 1000), [
      join('alice', run, '.tmp-now'),
    ])
  } finally {
    await server.app.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
