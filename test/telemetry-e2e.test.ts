// End to end through the real server over HTTP: the TS client trains and samples as two users against
// the engine double; the Prometheus scrape and GET /api/v1/usage report each user's tokens, and the
// OTLP receiver gets request → future → engine spans and log records correlated by trace id.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { EngineRegistry } from '../core/registry.js'
import { buildApp } from '../plugins/app.js'
import { createLogger } from '../plugins/telemetry/logging.js'
import { ALICE, BOB, MODEL, testConfig } from './helpers/app.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { type OtlpReceiver, type ReceivedSpan, startOtlpHttpReceiver } from './helpers/otlp-receiver.js'
import { LineCapture } from './telemetry-harness.js'

/** One Prometheus sample's value, matched by name and a subset of labels. */
function scrapeValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.split(' ').at(-1))
  }
  return undefined
}

describe('telemetry end to end (real app, engine double, TS client)', () => {
  let receiver: OtlpReceiver
  let dir: string
  let scrape = ''
  const usage: Record<string, { totals: Record<string, number> }> = {}
  let aliceSession = ''
  let aliceBilling: {
    data: { session_id: string | null; event_info: { type: string } }[]
    sessions: object
  } = {
    data: [],
    sessions: {},
  }
  const logs = new LineCapture()

  before(async () => {
    receiver = await startOtlpHttpReceiver()
    dir = mkdtempSync(join(tmpdir(), 'tuft-telemetry-e2e-'))
    const config = await testConfig(dir, {
      log_level: 'info',
      operators: ['alice'],
      telemetry: {
        enabled: true,
        otlp_endpoint: receiver.endpoint,
        prometheus: { enabled: true },
        // The access lines are the request-scoped lines of this flow: export them to check correlation.
        export_request_logs: true,
      },
    })
    const registry = new EngineRegistry()
    registry.register(createEngineDouble('double'))
    // As the CLI does: a pino instance from createLogger handed to the app.
    const app = await buildApp(config, {
      registry,
      configDir: dir,
      logger: createLogger(config, { stdout: logs }),
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    await app.models.loadAll()
    const address = app.server.address()
    assert.ok(address !== null && typeof address === 'object')
    const baseUrl = `http://127.0.0.1:${address.port}`
    try {
      const alice = new ServiceClient({ baseUrl, apiKey: ALICE })
      const bob = new ServiceClient({ baseUrl, apiKey: BOB })
      const aliceRun = await alice.createLoraTrainingClient(MODEL, { rank: 4 })
      await aliceRun.forwardBackward(
        [datumFromTokens([1, 2, 3, 4, 5]), datumFromTokens([6, 7, 8])],
        'cross_entropy',
      )
      await aliceRun.optimStep({ learning_rate: 0.01 })
      const sampler = await aliceRun.saveWeightsAndGetSamplingClient()
      await sampler.sample([1, 2, 3], 1, { max_tokens: 4, temperature: 0 })
      const bobRun = await bob.createLoraTrainingClient(MODEL, { rank: 4 })
      await bobRun.forwardBackward([datumFromTokens([9, 10, 11])], 'cross_entropy')
      scrape = await (await fetch(`${baseUrl}/metrics`, { headers: { 'x-api-key': ALICE } })).text()
      for (const [user, key] of [
        ['alice', ALICE],
        ['bob', BOB],
      ] as const) {
        const res = await fetch(`${baseUrl}/api/v1/usage`, { headers: { 'x-api-key': key } })
        usage[user] = (await res.json()) as { totals: Record<string, number> }
      }
      aliceSession = await alice.getSessionId()
      const billing = await fetch(`${baseUrl}/api/v1/billing/usage/events`, {
        headers: { 'x-api-key': ALICE },
      })
      aliceBilling = (await billing.json()) as typeof aliceBilling
      await alice.close()
      await bob.close()
    } finally {
      await app.close() // flushes the OTLP exporters
    }
  })
  after(async () => {
    await receiver.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('billing events name the session that consumed the tokens', () => {
    const types = new Set(aliceBilling.data.map((row) => row.event_info.type))
    for (const type of ['training', 'sampling_prefill', 'sampling_sample']) assert.ok(types.has(type), type)
    for (const row of aliceBilling.data.filter((r) => r.event_info.type !== 'storage')) {
      assert.equal(row.session_id, aliceSession)
    }
    assert.ok(aliceSession in aliceBilling.sessions)
  })

  test('Prometheus and the usage endpoint agree on each user’s tokens', () => {
    // Alice: inputs of 4 + 2 tokens; Bob: 2. Alice sampled 4 tokens from a 3-token prompt.
    assert.equal(scrapeValue(scrape, 'tuft_training_tokens_total', { user_id: 'alice', model: MODEL }), 6)
    assert.equal(scrapeValue(scrape, 'tuft_training_tokens_total', { user_id: 'bob', model: MODEL }), 2)
    assert.equal(scrapeValue(scrape, 'tuft_sampling_prefill_tokens_total', { user_id: 'alice' }), 3)
    assert.equal(scrapeValue(scrape, 'tuft_sampling_sampled_tokens_total', { user_id: 'alice' }), 4)
    assert.ok(
      (scrapeValue(scrape, 'http_server_request_duration_count', {
        http_route: '/api/v1/forward_backward',
      }) ?? 0) >= 2,
    )
    assert.equal(usage.alice?.totals.training_tokens, 6)
    assert.equal(usage.alice?.totals.prefill_tokens, 3)
    assert.equal(usage.alice?.totals.sampled_tokens, 4)
    assert.equal(usage.bob?.totals.training_tokens, 2)
    assert.equal(usage.bob?.totals.sampled_tokens, 0)
  })

  test('spans: request → future → engine for each forward_backward, with users and runs', () => {
    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]))
    const named = (name: string): ReceivedSpan[] => receiver.spans.filter((s) => s.name === name)
    const requests = named('POST /api/v1/forward_backward')
    assert.deepEqual(requests.map((r) => r.attributes.user_id).sort(), ['alice', 'bob'])
    const futures = named('future forward_backward')
    assert.equal(futures.length, 2)
    for (const f of futures) {
      const parent = byId.get(f.parentSpanId)
      assert.equal(parent?.name, 'POST /api/v1/forward_backward', 'the request span parents the future')
      assert.equal(f.attributes.user_id, parent?.attributes.user_id)
      assert.ok(
        typeof f.attributes.training_run_id === 'string' && typeof f.attributes.session_id === 'string',
      )
      const engines = named('engine forward_backward').filter(
        (e) => e.parentSpanId === f.spanId || e.links.some((l) => l.spanId === f.spanId),
      )
      assert.equal(engines.length, 1, 'exactly one engine call served the future (child or link)')
    }
    const [sampleFuture] = named('future sample')
    assert.ok(sampleFuture)
    const sampleEngine = named('engine sample').find((e) => e.parentSpanId === sampleFuture.spanId)
    assert.equal(sampleEngine?.attributes['tokens.sampled'], 4)
    assert.equal(sampleEngine?.attributes.user_id, 'alice')
    for (const s of receiver.spans) {
      for (const v of Object.values(s.attributes))
        assert.ok(!String(v).includes('tml-'), `${s.name} leaks a key`)
    }
  })

  test('log records exported over OTLP are correlated with the request spans', () => {
    const traces = new Set(receiver.spans.filter((s) => s.kind === 2).map((s) => s.traceId))
    const access = receiver.logs.filter(
      (l) => l.body === 'incoming request' || l.body === 'request completed',
    )
    assert.ok(access.length >= 10, `access lines exported (export_request_logs): ${access.length}`)
    for (const l of access) assert.ok(traces.has(l.traceId), `"${l.body}" carries its request's trace id`)
    const consoleCorrelated = logs.lines.filter(
      (l) => typeof l.trace_id === 'string' && traces.has(l.trace_id),
    )
    assert.ok(consoleCorrelated.length > 0, 'console lines carry trace_id too')
    assert.ok(!logs.lines.some((l) => JSON.stringify(l).includes('tml-')), 'no API key in any log line')
  })
})
