// Session trace export (spec §3.24, SDK export_session_trace): the owner gets `{"status": "ready",
// "url"}` with a self-authorising link built from the listen address; the link serves the session's
// futures as a Chrome trace-event JSON that Perfetto opens; nobody else can export the session, and
// a forged or altered link is a 404. The recorder's memory stays within its bounds.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ServiceClient } from '../client/index.js'
import { EventBus, type FutureKind } from '../core/events.js'
import { SessionTraces } from '../core/services/session-traces.js'
import { SessionService } from '../core/services/sessions.js'
import { MemoryStore } from '../persistence/memory.js'
import { ALICE, BOB, startTestApp } from './helpers/app.js'
import { createRun, createSession } from './helpers/conformance.js'
import { assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'
import * as sdk from './helpers/sdk-models.js'

interface TraceEvent {
  name: string
  ph: string
  pid: number
  ts?: number
  id?: string
  args?: Record<string, unknown>
}

async function trainOneStep(base: string, modelId: string): Promise<void> {
  const fb = await postFwdBwd(base, ALICE, ceRequest(modelId, 1, [3, 5, 7, 9]))
  assert.equal(fb.status, 200, fb.text)
  const opt = await call(base, 'POST', '/optim_step', {
    key: ALICE,
    json: { model_id: modelId, seq_id: 2, adam_params: { learning_rate: 0.1 } },
  })
  assert.equal(opt.status, 200, opt.text)
  for (const f of [fb, opt]) assert.equal((await result(base, ALICE, f.json.request_id)).status, 200)
}

test("the owner exports a session's futures as a Perfetto-readable trace behind a signed link", async () => {
  const t = await startTestApp()
  try {
    const base = await listen(t.app)
    const { sessionId, modelId } = await createRun(base, ALICE)
    await trainOneStep(base, modelId)

    const asked = await call(base, 'GET', `/sessions/${sessionId}/trace_export`, { key: ALICE })
    assert.equal(asked.status, 200, asked.text)
    sdk.assertModel(sdk.SessionTraceExportPollResponse, asked.json, 'SessionTraceExportPollResponse')
    assert.equal(asked.json.status, 'ready')
    const url: string = asked.json.url
    assert.ok(url.startsWith(`${base}/api/v1/session_traces/`), url)

    const client = new ServiceClient({ baseUrl: base, apiKey: ALICE, telemetry: false })
    try {
      const viaClient = await client.createRestClient().exportSessionTrace(sessionId)
      assert.ok(viaClient.startsWith(`${base}/api/v1/session_traces/`), viaClient)
    } finally {
      await client.close()
    }

    // A plain GET, as the CLI downloads it: no API key.
    const res = await fetch(url)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
    const trace = (await res.json()) as { traceEvents: TraceEvent[]; otherData: Record<string, unknown> }
    assert.equal(trace.otherData.session_id, sessionId)
    assert.equal(trace.otherData.futures, 3)

    const named = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name')
    assert.deepEqual(
      named.map((e) => e.args?.name),
      [modelId],
      'one row per training run or sampler',
    )
    const begins = trace.traceEvents.filter((e) => e.ph === 'b')
    const futures = begins.filter((e) => e.args?.request_id !== undefined)
    assert.deepEqual(
      futures.map((e) => e.name),
      ['create_model', 'forward_backward', 'optim_step'],
    )
    for (const f of futures) {
      assert.equal(f.args?.outcome, 'ok')
      const own = trace.traceEvents.filter((e) => e.id === f.id)
      const phases = own.filter((e) => e.name === 'queued' || e.name === 'running')
      assert.deepEqual(
        phases.map((e) => `${e.name}:${e.ph}`),
        ['queued:b', 'queued:e', 'running:b', 'running:e'],
      )
      const end = own.find((e) => e.ph === 'e' && e.name === f.name)
      assert.ok(
        end?.ts !== undefined && f.ts !== undefined && end.ts >= f.ts,
        'each slice ends after it begins',
      )
      // Microseconds since the epoch, as the format wants.
      assert.ok(Math.abs((f.ts as number) / 1000 - Date.now()) < 60_000)
    }
    assert.equal(begins.length, trace.traceEvents.filter((e) => e.ph === 'e').length, 'every slice is closed')
  } finally {
    await t.close()
  }
})

test('nobody else can export a session, and a forged or altered link is a 404', async () => {
  const t = await startTestApp()
  try {
    const base = await listen(t.app)
    const { sessionId, modelId } = await createRun(base, ALICE)
    await trainOneStep(base, modelId)
    assertError(await call(base, 'GET', `/sessions/${sessionId}/trace_export`, { key: BOB }), 404, /session/)
    assertError(await call(base, 'GET', '/sessions/s-0000/trace_export', { key: ALICE }), 404, /session/)
    assertError(await call(base, 'GET', `/sessions/${sessionId}/trace_export`), 401)

    // Bob's own session shows none of Alice's work.
    const bobs = await createSession(base, BOB)
    const bobAsked = await call(base, 'GET', `/sessions/${bobs}/trace_export`, { key: BOB })
    const bobTrace = (await (await fetch(bobAsked.json.url)).json()) as { traceEvents: TraceEvent[] }
    assert.deepEqual(bobTrace.traceEvents, [])

    const url: string = (await call(base, 'GET', `/sessions/${sessionId}/trace_export`, { key: ALICE })).json
      .url
    const token = url.slice(url.lastIndexOf('/') + 1)
    const [payload, sig] = token.split('.') as [string, string]
    // Bob's payload under Alice's signature: the signature covers the payload.
    const bobPayload = bobAsked.json.url.slice(bobAsked.json.url.lastIndexOf('/') + 1).split('.')[0]
    for (const forged of [`${token}.x`, `${token}%20`, `${bobPayload}.${sig}`, `${payload}.`, 'x']) {
      const res = await fetch(`${base}/api/v1/session_traces/${forged}`)
      const text = await res.text()
      assertError({ status: res.status, headers: res.headers, text, json: JSON.parse(text) }, 404, /link/)
    }
    // An archive link is no trace link (each has its own key).
    const archive = await fetch(`${base}/api/v1/checkpoint_archives/${token}`)
    assert.equal(archive.status, 404)
  } finally {
    await t.close()
  }
})

test('the recorder keeps at most perSession entries a session and forgets the idlest sessions past total', async () => {
  const events = new EventBus()
  const store = new MemoryStore()
  const sessions = new SessionService({ store, expiryMs: 60_000, idempotencyTtlMs: 60_000 })
  const traces = new SessionTraces({ events, sessions, perSession: 3, total: 5 })
  const [a, b] = [await sessions.create('alice', {}), await sessions.create('alice', {})]
  let n = 0
  const finish = (sessionId: string, kind: FutureKind = 'forward_backward') => {
    const trace = { requestId: `r${n++}`, userId: 'alice', sessionId, trainingRunId: `${sessionId}:train:0` }
    events.emit('future.running', { trace, kind, modelName: 'm', waitedMs: 0 })
    events.emit('future.done', { trace, kind, modelName: 'm', ok: true, totalMs: 1 })
  }
  const exported = async (sessionId: string) =>
    traces.open(await traces.link('alice', sessionId, Date.now() + 60_000))

  for (let i = 0; i < 5; i++) finish(a.id)
  const { futures, dropped } = (await exported(a.id)).otherData
  assert.deepEqual({ futures, dropped }, { futures: 3, dropped: 2 })
  finish(b.id)
  finish(b.id)
  assert.equal((await exported(a.id)).otherData.futures, 3, 'a and b hold 5 entries: both kept')
  finish(b.id)
  assert.equal((await exported(a.id)).otherData.futures, 0, 'past the total, a (idle longest) is forgotten')
  assert.equal((await exported(b.id)).otherData.futures, 3)
  await assert.rejects(traces.link('bob', a.id, Date.now() + 60_000), /Unknown session/)
  await assert.rejects(
    traces.open(await traces.link('alice', a.id, Date.now() - 1)),
    /Unknown or expired trace export link/,
  )
  await store.close()
})
