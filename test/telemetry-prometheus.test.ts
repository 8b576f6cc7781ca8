// The Prometheus scrape endpoint on the app's own port: off by default, at the configured path when
// on (with or without OTLP telemetry), exposing per-user counters with the values the flow produced.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base'
import { createTelemetry } from '../plugins/telemetry/sdk.js'
import { buildFlowApp, MODEL, runFlow, telemetryConfig } from './telemetry-harness.js'

/** Parses the text exposition into [name, labels, value] samples. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out = []
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = l[2] as string
    out.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return out
}

function value(text: string, name: string, labels: Record<string, string>): number | undefined {
  return samples(text).find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value
}

/** alice is an operator in telemetryConfig(); bob is not. */
const OPERATOR = 'tml-alice-secret'

describe('Prometheus scrape endpoint', () => {
  test('per-user series are for operators only: 401 without a key, 403 for other users', async () => {
    const config = telemetryConfig({ enabled: false, prometheus: { enabled: true, path: '/metrics' } })
    const flow = await buildFlowApp({ config })
    try {
      await runFlow(flow)
      const anonymous = await flow.app.inject('/metrics')
      assert.equal(anonymous.statusCode, 401)
      assert.doesNotMatch(anonymous.body, /user_id/)
      const bob = await flow.app.inject({ url: '/metrics', headers: { 'x-api-key': 'tml-bob-secret' } })
      assert.equal(bob.statusCode, 403)
      assert.match(JSON.parse(bob.body).detail, /operator/)
      const operator = await flow.app.inject({ url: '/metrics', headers: { 'x-api-key': OPERATOR } })
      assert.equal(operator.statusCode, 200)
      assert.match(operator.body, /user_id="bob"/)
    } finally {
      await flow.app.close()
    }
  })

  test('metrics only (telemetry.enabled false): per-user counters and latency on /metrics', async () => {
    const config = telemetryConfig({ enabled: false, prometheus: { enabled: true, path: '/metrics' } })
    const flow = await buildFlowApp({ config })
    try {
      assert.ok(flow.app.telemetry)
      assert.equal(flow.app.telemetry.tracer, null, 'no tracing without enabled')
      await runFlow(flow)
      const res = await flow.app.inject({ url: '/metrics', headers: { 'x-api-key': OPERATOR } })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
      const text = res.body
      assert.equal(value(text, 'tuft_training_tokens_total', { user_id: 'alice', model: MODEL }), 12)
      assert.equal(value(text, 'tuft_training_tokens_total', { user_id: 'bob', model: MODEL }), 5)
      assert.equal(value(text, 'tuft_sampling_prefill_tokens_total', { user_id: 'alice' }), 4)
      assert.equal(value(text, 'tuft_sampling_sampled_tokens_total', { user_id: 'alice' }), 3)
      assert.equal(value(text, 'tuft_sampling_sampled_tokens_total', { user_id: 'bob' }), undefined)
      assert.equal(
        value(text, 'http_server_request_duration_count', {
          http_route: '/api/v1/train',
          http_response_status_code: '200',
        }),
        2,
      )
      assert.equal(
        value(text, 'tuft_future_duration_count', { future_kind: 'forward_backward', outcome: 'ok' }),
        2,
      )
      assert.equal(value(text, 'target_info', { service_name: 'tuft-test' }), 1)
    } finally {
      await flow.app.close()
    }
  })

  test('alongside tracing, at a configured path; absent when off', async () => {
    const config = telemetryConfig({ prometheus: { enabled: true, path: '/internal/metrics' } })
    const telemetry = await createTelemetry(config, { exporters: { spans: new InMemorySpanExporter() } })
    const flow = await buildFlowApp({ config, telemetry })
    try {
      await runFlow(flow)
      const text = (
        await flow.app.inject({ url: '/internal/metrics', headers: { authorization: `Bearer ${OPERATOR}` } })
      ).body
      assert.equal(value(text, 'tuft_training_tokens_total', { user_id: 'alice' }), 12)
      assert.equal(flow.app.hasRoute({ method: 'GET', url: '/metrics' }), false)
    } finally {
      await flow.app.close()
    }
    const off = await buildFlowApp({ config: telemetryConfig(), telemetry: null })
    try {
      assert.equal(off.app.hasRoute({ method: 'GET', url: '/metrics' }), false)
    } finally {
      await off.app.close()
    }
  })
})
