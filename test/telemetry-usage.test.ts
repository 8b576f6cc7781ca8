// Usage metering: per-user totals in Tinker's billing units, hourly billing events with the spec's
// strict event_info shapes (storage integrated into gigabyte-hours), and the REST endpoints' access
// rules (own usage for everyone, all users for operators or in dev mode).

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { EventBus } from '../core/events.js'
import { DEV_API_KEY } from '../plugins/auth.js'
import { UsageMeter } from '../plugins/telemetry/usage.js'
import { buildFlowApp, type FlowApp, MODEL, runFlow, telemetryConfig } from './telemetry-harness.js'

const T0 = Date.parse('2026-08-19T10:15:00Z')
const MIN = 60_000
const GB = 1e9

function clock(start: number) {
  const c = { t: start, now: () => c.t }
  return c
}

describe('UsageMeter', () => {
  test('totals per user and model from usage events', () => {
    const c = clock(T0)
    const meter = new UsageMeter({ now: c.now })
    const bus = new EventBus()
    const stop = meter.observe(bus)
    bus.emit('usage', { userId: 'alice', modelName: 'm1', kind: 'training_tokens', amount: 100 })
    bus.emit('usage', { userId: 'alice', modelName: 'm2', kind: 'training_tokens', amount: 50 })
    bus.emit('usage', { userId: 'alice', modelName: 'm1', kind: 'prefill_tokens', amount: 7 })
    bus.emit('usage', { userId: 'alice', modelName: 'm1', kind: 'sampled_tokens', amount: 9 })
    bus.emit('usage', { userId: 'bob', modelName: 'm1', kind: 'training_tokens', amount: 1 })
    stop()
    bus.emit('usage', { userId: 'alice', modelName: 'm1', kind: 'training_tokens', amount: 1000 })
    const alice = meter.user('alice')
    assert.equal(alice.totals.training_tokens, 150, 'events after stop() are not counted')
    assert.equal(alice.models.m1?.training_tokens, 100)
    assert.equal(alice.models.m2?.training_tokens, 50)
    assert.equal(alice.totals.prefill_tokens, 7)
    assert.equal(alice.totals.sampled_tokens, 9)
    assert.deepEqual(
      meter.all().map((u) => [u.user_id, u.totals.training_tokens]),
      [
        ['alice', 150],
        ['bob', 1],
      ],
    )
    assert.equal(meter.user('carol').totals.training_tokens, 0)
  })

  test('checkpoint storage is integrated over time into gigabyte-hours, split by hour', () => {
    const c = clock(Date.parse('2026-08-19T10:30:00Z'))
    const meter = new UsageMeter({ now: c.now })
    meter.record({
      userId: 'alice',
      modelName: 'm',
      kind: 'checkpoint_bytes',
      amount: 2 * GB,
      sessionId: 's1',
    })
    c.t = Date.parse('2026-08-19T12:30:00Z')
    meter.record({ userId: 'alice', modelName: 'm', kind: 'checkpoint_bytes', amount: -1 * GB })
    c.t = Date.parse('2026-08-19T13:00:00Z')
    const usage = meter.user('alice')
    assert.equal(usage.totals.checkpoint_bytes, 1 * GB)
    assert.equal(usage.totals.checkpoints_saved, 1, 'a deletion is not a save')
    // 2 GB for 2 h, then 1 GB for 0.5 h.
    assert.ok(
      Math.abs(usage.totals.storage_gigabyte_hours - 4.5) < 1e-9,
      String(usage.totals.storage_gigabyte_hours),
    )
    const storage = meter
      .billing('alice', 0, Number.POSITIVE_INFINITY)
      .data.filter((e) => e.event_info.type === 'storage')
      .map((e) => [e.bucket_start, (e.event_info as { gigabyte_hours: number }).gigabyte_hours])
    assert.deepEqual(storage, [
      ['2026-08-19T10:00:00.000Z', 1],
      ['2026-08-19T11:00:00.000Z', 2],
      ['2026-08-19T12:00:00.000Z', 1.5],
    ])
  })

  test('billing events: hourly buckets, a window, strict event_info keys, sessions', () => {
    const c = clock(T0)
    const meter = new UsageMeter({ now: c.now })
    meter.record({
      userId: 'alice',
      modelName: MODEL,
      kind: 'training_tokens',
      amount: 1200,
      sessionId: 's-a',
    })
    meter.record({ userId: 'alice', modelName: MODEL, kind: 'prefill_tokens', amount: 30, sessionId: 's-a' })
    meter.record({ userId: 'alice', modelName: MODEL, kind: 'sampled_tokens', amount: 40, sessionId: 's-a' })
    meter.record({ userId: 'bob', modelName: MODEL, kind: 'training_tokens', amount: 5, sessionId: 's-b' })
    c.t = T0 + 60 * MIN
    meter.record({ userId: 'alice', modelName: MODEL, kind: 'training_tokens', amount: 1, sessionId: 's-a' })

    const all = meter.billing('alice', 0, Number.POSITIVE_INFINITY)
    assert.deepEqual(Object.keys(all.sessions), ['s-a'])
    assert.deepEqual(
      all.data.map((e) => [e.bucket_start, e.event_info]),
      [
        ['2026-08-19T10:00:00.000Z', { type: 'training', token_count: 1200 }],
        ['2026-08-19T10:00:00.000Z', { type: 'sampling_prefill', cached: false, token_count: 30 }],
        ['2026-08-19T10:00:00.000Z', { type: 'sampling_sample', token_count: 40 }],
        ['2026-08-19T11:00:00.000Z', { type: 'training', token_count: 1 }],
      ],
    )
    const first = all.data[0]
    assert.ok(first)
    assert.deepEqual(Object.keys(first).sort(), [
      'base_model',
      'bucket_end',
      'bucket_start',
      'event_info',
      'project_id',
      'session_id',
      'user_id',
      'user_name',
    ])
    assert.equal(first.bucket_end, '2026-08-19T11:00:00.000Z')
    assert.equal(first.session_id, 's-a')
    assert.equal(first.base_model, MODEL)

    const window = meter.billing(
      'alice',
      Date.parse('2026-08-19T11:00:00Z'),
      Date.parse('2026-08-20T00:00:00Z'),
    )
    assert.deepEqual(
      window.data.map((e) => e.event_info),
      [{ type: 'training', token_count: 1 }],
    )
    assert.equal(
      meter.billing(null, 0, Number.POSITIVE_INFINITY).data.filter((e) => e.user_id === 'bob').length,
      1,
    )
  })
})

describe('usage REST endpoints', () => {
  const get = (flow: FlowApp, url: string, key?: string) =>
    flow.app.inject({ method: 'GET', url, headers: key === undefined ? {} : { 'x-api-key': key } })

  test('each user reads their own usage; operators read everybody; others are refused', async () => {
    const flow = await buildFlowApp({ config: telemetryConfig({ enabled: false }) })
    try {
      await runFlow(flow)
      const alice = await get(flow, '/api/v1/usage', 'tml-alice-secret')
      assert.equal(alice.statusCode, 200)
      const body = alice.json()
      assert.equal(body.user_id, 'alice')
      assert.equal(body.totals.training_tokens, 12)
      assert.equal(body.totals.prefill_tokens, 4)
      assert.equal(body.totals.sampled_tokens, 3)
      assert.equal(body.models[MODEL].training_tokens, 12)
      assert.equal((await get(flow, '/api/v1/usage', 'tml-bob-secret')).json().totals.training_tokens, 5)
      assert.equal((await get(flow, '/api/v1/usage')).statusCode, 401)

      assert.equal((await get(flow, '/api/v1/admin/usage', 'tml-bob-secret')).statusCode, 403)
      const admin = await get(flow, '/api/v1/admin/usage', 'tml-alice-secret')
      assert.equal(admin.statusCode, 200)
      assert.deepEqual(
        admin
          .json()
          .users.map((u: { user_id: string; totals: { training_tokens: number } }) => [
            u.user_id,
            u.totals.training_tokens,
          ]),
        [
          ['alice', 12],
          ['bob', 5],
        ],
      )

      const billing = await get(flow, '/api/v1/billing/usage/events', 'tml-bob-secret')
      assert.equal(billing.statusCode, 200)
      assert.deepEqual(
        billing.json().data.map((e: { user_id: string; event_info: unknown }) => [e.user_id, e.event_info]),
        [['bob', { type: 'training', token_count: 5 }]],
      )
      assert.deepEqual(Object.keys(billing.json().sessions), ['s-bob'])
      const future = await get(
        flow,
        '/api/v1/billing/usage/events?starting_on=2100-01-01T00:00:00Z&ending_before=2100-01-02T00:00:00Z',
        'tml-bob-secret',
      )
      assert.deepEqual(future.json().data, [])
      const bad = await get(flow, '/api/v1/billing/usage/events?starting_on=yesterday', 'tml-bob-secret')
      assert.equal(bad.statusCode, 400)
    } finally {
      await flow.app.close()
    }
  })

  test('in dev mode (no authorized_users) the dev user may read everybody', async () => {
    const flow = await buildFlowApp({
      config: telemetryConfig({ enabled: false, operators: [] }),
      devMode: true,
    })
    try {
      flow.events.emit('usage', { userId: 'alice', modelName: MODEL, kind: 'training_tokens', amount: 3 })
      flow.events.emit('usage', { userId: 'bob', modelName: MODEL, kind: 'sampled_tokens', amount: 2 })
      const admin = await get(flow, '/api/v1/admin/usage', DEV_API_KEY)
      assert.equal(admin.statusCode, 200)
      assert.deepEqual(
        admin.json().users.map((u: { user_id: string }) => u.user_id),
        ['alice', 'bob'],
      )
      assert.equal((await get(flow, '/api/v1/usage', DEV_API_KEY)).json().user_id, 'local-user')
    } finally {
      await flow.app.close()
    }
  })
})
