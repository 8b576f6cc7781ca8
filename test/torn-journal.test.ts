// A crash that tears the file store's journal in the record of an optim_step's finished future (the
// run's durable point, written just before it, survives): after the restart the step is in the run's
// state, so its future must read as completed with its result, also once the client has trained on
// (which moves the durable point past it); reported as lost, its client would apply the step again.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { MODEL } from './helpers/app.js'
import { freePort } from './helpers/redis.js'
import {
  fwdBwdBody,
  post,
  type Settled,
  settle,
  startTuft,
  submit,
  writeTuftConfig,
} from './helpers/tuft-process.js'

const SEQUENCE = [1, 2, 3, 4, 5]
const ADAM = { learning_rate: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-12 }

function json(s: Settled): Record<string, unknown> {
  if (!s.ok) throw new Error(`future failed: ${s.error}`)
  return JSON.parse(s.body.toString()) as Record<string, unknown>
}

const stepOf = (s: Settled) => (json(s).metrics as Record<string, number>)['step:max']

/** Cuts the journal in the middle of the record that finished future `id`, as a crash during its write. */
function tearJournalAt(journal: string, id: string): void {
  const text = readFileSync(journal)
  let start = 0
  while (start < text.length) {
    const end = text.indexOf(0x0a, start) + 1
    const line = text.subarray(start, end).toString('utf8')
    const record = JSON.parse(line.slice(9)) as { k: string; d?: { state?: string } }
    if (record.k === `future/${id}` && record.d?.state === 'done') {
      truncateSync(journal, start + Math.floor((end - start) / 2))
      return
    }
    start = end
  }
  throw new Error(`no finished record of ${id} in the journal`)
}

test('an optim_step whose finished record a torn journal lost reads as completed after the restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-torn-'))
  const config = writeTuftConfig({
    dir,
    port: await freePort(),
    persistence: { mode: 'file', file_path: join(dir, 'state') },
  })
  let server = await startTuft(config, dir)
  try {
    const session = (await (await post(server.baseUrl, 'create_session', {})).json()) as {
      session_id: string
    }
    const created = await submit(server.baseUrl, 'create_model', {
      session_id: session.session_id,
      model_seq_id: 0,
      base_model: MODEL,
      lora_config: { rank: 4, seed: 1 },
    })
    const run = json(await settle(server.baseUrl, created)).model_id as string
    const optim = (seq: number) => ({ model_id: run, seq_id: seq, adam_params: ADAM })
    assert.ok(
      (
        await settle(
          server.baseUrl,
          await submit(server.baseUrl, 'forward_backward', fwdBwdBody(run, 1, SEQUENCE)),
        )
      ).ok,
    )
    const stepped = await submit(server.baseUrl, 'optim_step', optim(2))
    const acknowledged = await settle(server.baseUrl, stepped)
    assert.equal(stepOf(acknowledged), 1)

    await server.crash()
    tearJournalAt(join(dir, 'state', 'journal.log'), stepped)
    server = await startTuft(config, dir)

    // The client trains on first: the run resumes at step 1 and the durable point moves to step 2.
    assert.ok(
      (
        await settle(
          server.baseUrl,
          await submit(server.baseUrl, 'forward_backward', fwdBwdBody(run, 3, SEQUENCE)),
        )
      ).ok,
    )
    assert.equal(
      stepOf(await settle(server.baseUrl, await submit(server.baseUrl, 'optim_step', optim(4)))),
      2,
    )
    assert.ok(server.output().includes('dropping the torn tail of the journal'), 'the journal was torn')

    // Then asks about the step whose finished record was lost: completed, with the result it had.
    const again = await settle(server.baseUrl, stepped)
    assert.ok(again.ok, `reported as ${again.ok ? 'done' : again.error}`)
    assert.deepEqual(json(again), json(acknowledged))
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
