// Server faults never reach a client with a server path (issue 17): a filesystem error in an HTTP
// handler or in an operation's future shows the client "Internal error (correlation id …)", and the log
// line with the same id holds the error and its path. A user's bad checkpoint name is a 400 instead.

import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { EngineRegistry } from '../core/registry.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, testConfig } from './helpers/app.js'
import { createRun } from './helpers/conformance.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { assertError, call, listen, result } from './helpers/http.js'
import { LineCapture } from './telemetry-harness.js'

let dir: string
let app: FastifyInstance
let base: string
const logs = new LineCapture()

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tuft-internal-errors-'))
  const config = await testConfig(dir)
  const registry = new EngineRegistry()
  registry.register(createEngineDouble('double'))
  app = await buildApp(config, { registry, configDir: dir, logger: pino({ level: 'error' }, logs) })
  // A handler whose filesystem call fails, as any handler's could.
  app.get('/api/v1/test-fs-failure', async () => readFile(join(dir, 'no-such-dir', 'secret.bin')))
  base = await listen(app)
  await app.models.loadAll()
})

after(async () => {
  await app.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The error log line with this correlation id (there must be exactly one). */
function loggedUnder(id: string): Record<string, unknown> & { err: { message: string } } {
  const lines = logs.lines.filter((l) => l.correlationId === id)
  assert.equal(lines.length, 1, `one log line for ${id}`)
  return lines[0] as Record<string, unknown> & { err: { message: string } }
}

const CORRELATED = /^Internal error \(correlation id ([0-9a-f-]{36})\)$/

test('an HTTP handler fault: 500 with a correlation id, the path only in the log', async () => {
  const a = await call(base, 'GET', '/test-fs-failure', { key: ALICE })
  assertError(a, 500, CORRELATED)
  assert.ok(!a.text.includes(dir), a.text)
  assert.equal(a.json.code, 'TUFT_INTERNAL')
  const id = CORRELATED.exec(a.json.detail)![1]!
  assert.match(loggedUnder(id).err.message, /ENOENT.*no-such-dir/)
})

test('a failed save (filesystem refuses) fails its future with a correlation id, the path only in the log', async () => {
  const { modelId } = await createRun(base, ALICE)
  // The run's weights directory is a file: creating the checkpoint there fails.
  const runDir = join(dir, 'checkpoints', 'alice', modelId)
  mkdirSync(runDir, { recursive: true })
  writeFileSync(join(runDir, 'weights'), 'not a directory')
  const submitted = await call(base, 'POST', '/save_weights', {
    key: ALICE,
    json: { model_id: modelId, seq_id: 1, path: 'step-1' },
  })
  assert.equal(submitted.status, 200, submitted.text)
  const failed = await result(base, ALICE, submitted.json.request_id)
  assert.equal(failed.json.category, 'server', failed.text)
  assert.match(failed.json.error, CORRELATED)
  assert.ok(!failed.text.includes(dir), failed.text)
  const id = CORRELATED.exec(failed.json.error)![1]!
  const line = loggedUnder(id)
  assert.ok(line.err.message.includes(runDir), line.err.message)
  assert.equal(line.request, submitted.json.request_id)
})

test('checkpoint names: over 255 UTF-8 bytes, control or bidi characters are 400 naming the problem', async () => {
  const { modelId } = await createRun(base, ALICE)
  const save = (path: string, seq: number, endpoint = '/save_weights') =>
    call(base, 'POST', endpoint, { key: ALICE, json: { model_id: modelId, seq_id: seq, path } })
  assertError(await save('é'.repeat(128), 1), 400, /256 bytes in UTF-8; at most 255/)
  assertError(await save('invoice\u202Egpj.exe', 1), 400, /holds U\+202E/)
  assertError(await save('a\u0007b', 1, '/save_weights_for_sampler'), 400, /holds U\+0007/)
  assertError(await save('a/b', 1), 400, /holds U\+002F/)
  // None of them took the seq_id: the next save with it works.
  const ok = await save('é'.repeat(127), 1)
  assert.equal(ok.status, 200, ok.text)
  assert.match((await result(base, ALICE, ok.json.request_id)).json.path, /\/weights\/é{127}$/)
})
