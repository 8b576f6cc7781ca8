// retrieve_futures (README compatibility table, "batch long-poll"): replays what SDK 0.26.2's
// SessionFuturesPoller sends (lib/session_futures_poller.py, types/futures_retrieve_request.py) and
// checks the answers against its FuturesRetrieveResponse: each cloned client sees only its own
// completions, a cursor acknowledges what was read, polls are held until a completion arrives, the
// payloads come through retrieve_future, failures are reported as `failed`, other users get 404, and
// the flag is advertised only where the feed works (not with a durable store, where the call is a 400).

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { EventBus } from '../core/events.js'
import { SampleCompletions } from '../core/services/sample-completions.js'
import { ALICE, BOB, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import { createBaseSampler, createSession } from './helpers/conformance.js'
import { assertError, call, listen, result } from './helpers/http.js'
import { assertModel } from './helpers/sdk-models.js'
import * as newer from './helpers/sdk-newer-models.js'

const CLONE = 1_000_000_000

describe('with the memory store', () => {
  let t: TestApp
  let base: string
  let samplerId: string

  before(async () => {
    t = await startTestApp()
    base = await listen(t.app)
    const sessionId = await createSession(base, ALICE)
    samplerId = await createBaseSampler(base, ALICE, sessionId)
  })
  after(() => t.close())

  const sample = async (seqId: number) => {
    const a = await call(base, 'POST', '/asample', {
      key: ALICE,
      json: {
        num_samples: 1,
        prompt: { chunks: [{ tokens: [3, 4], type: 'encoded_text' }] },
        sampling_params: { max_tokens: 2, temperature: 1, top_k: -1, top_p: 1 },
        sampling_session_id: samplerId,
        seq_id: seqId,
        prompt_logprobs: false,
        topk_prompt_logprobs: 0,
        record_stability_info: false,
        type: 'sample',
      },
    })
    assert.equal(a.status, 200, a.text)
    return a.json.request_id as string
  }

  /** One poll as the SDK's poller sends it (no `timeout`); `timeout` only to keep idle polls short. */
  const poll = async (clone: number, cursor: number, key = ALICE, timeout?: number) => {
    const a = await call(base, 'POST', '/retrieve_futures', {
      key,
      json: {
        target: { type: 'sampling_session', sampling_session_id: samplerId, cloned_sampler_id: clone },
        prev_cursor: cursor,
        ...(timeout === undefined ? {} : { timeout }),
      },
    })
    return a
  }

  /** Polls like the SDK until `ids` have all been reported; returns the final cursor. */
  const collect = async (clone: number, ids: string[], cursor = 0) => {
    const seen = new Set<string>()
    while (![...ids].every((id) => seen.has(id))) {
      const a = await poll(clone, cursor)
      assert.equal(a.status, 200, a.text)
      assertModel(newer.FuturesRetrieveResponse, a.json, 'FuturesRetrieveResponse')
      for (const c of a.json.completions) {
        assert.ok(ids.includes(c.request_id), `clone ${clone} saw only its own requests (${c.request_id})`)
        assert.equal(c.state, 'finished')
        seen.add(c.request_id)
      }
      assert.ok(a.json.cursor >= cursor, 'the cursor never goes back')
      cursor = a.json.cursor
    }
    return cursor
  }

  test('client/config advertises sample_use_retrieve_futures', async () => {
    const a = await call(base, 'POST', '/client/config', { key: ALICE, json: { sdk_version: '0.26.2' } })
    assert.equal(a.json.sample_use_retrieve_futures, true)
  })

  test('each cloned client polls its own completions; the payloads come through retrieve_future', async () => {
    const mine = [await sample(0), await sample(1), await sample(2)]
    const cloned = [await sample(CLONE + 5)]
    const cursor = await collect(0, mine)
    await collect(1, cloned)
    for (const id of mine) {
      const r = await result(base, ALICE, id, 'application/x-protobuf')
      assert.equal(r.status, 200)
    }
    // Read completions are not reported again: an idle poll is held, then answers nothing new.
    const idle = await poll(0, cursor, ALICE, 0.2)
    assert.deepEqual(idle.json, { completions: [], cursor })
  })

  test('a held poll answers as soon as a sample of its client completes', async () => {
    const cursor = (await poll(0, 0, ALICE, 0)).json.cursor
    const held = poll(0, cursor)
    await new Promise((r) => setTimeout(r, 50))
    const id = await sample(10)
    const a = await held
    assert.deepEqual(
      a.json.completions.map((c: { request_id: string }) => c.request_id),
      [id],
    )
  })

  test("another user's sampler is 404, as everywhere", async () => {
    const a = await poll(0, 0, BOB, 0)
    assertError(a, 404)
    assert.ok(!a.text.includes('alice'))
  })
})

test('failed samples are reported as failed; a cursor from elsewhere restarts the feed', async () => {
  const events = new EventBus()
  const feed = new SampleCompletions(events)
  const sampler = { id: 's:sample:0', sessionId: 's' }
  const done = (requestId: string, ok: boolean) =>
    events.emit('future.done', {
      trace: { requestId, userId: 'u', sessionId: 's', samplingSessionId: sampler.id },
      kind: 'sample',
      modelName: MODEL,
      ok,
      totalMs: 1,
    })
  feed.submitted('r1', sampler.id, 3)
  done('r1', false)
  // Completed before its submission was announced (a very fast engine): still reported.
  done('r2', true)
  feed.submitted('r2', sampler.id, 4)
  const page = await feed.poll(sampler, 0, 0, 0)
  assert.deepEqual(page.completions, [
    { state: 'failed', request_id: 'r1' },
    { state: 'finished', request_id: 'r2' },
  ])
  assert.deepEqual((await feed.poll(sampler, 0, 999, 0)).completions.length, 2)
  assert.deepEqual((await feed.poll(sampler, 0, page.cursor, 0)).completions, [])
  feed.dropSession('s')
  done('r3', true)
  feed.submitted('r3', sampler.id, 5)
  assert.deepEqual((await feed.poll(sampler, 0, 0, 0)).completions, [{ state: 'finished', request_id: 'r3' }])
})

test('with a durable store the flag stays off and retrieve_futures is a clear 400', async () => {
  const t = await startTestApp({ persistence: { mode: 'file', file_path: 'store' } })
  try {
    const base = await listen(t.app)
    const config = await call(base, 'POST', '/client/config', { key: ALICE, json: { sdk_version: '0.26.2' } })
    assert.equal(config.json.sample_use_retrieve_futures, false)
    const a = await call(base, 'POST', '/retrieve_futures', {
      key: ALICE,
      json: { target: { type: 'sampling_session', sampling_session_id: 'x' }, prev_cursor: 0 },
    })
    assertError(a, 400, /retrieve_future/)
  } finally {
    await t.close()
  }
})
