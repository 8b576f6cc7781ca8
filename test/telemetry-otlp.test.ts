// Telemetry over the wire: the real OTLP exporters (HTTP/protobuf and gRPC) deliver the flow's spans,
// metrics and logs to a receiver on loopback, and closing the app flushes all three.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createTelemetry } from '../plugins/telemetry/sdk.js'
import {
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpGrpcReceiver,
  startOtlpHttpReceiver,
} from './helpers/otlp-receiver.js'
import { buildFlowApp, MODEL, runFlow, telemetryConfig } from './telemetry-harness.js'

async function exportFlow(receiver: OtlpReceiver, protocol: 'http/protobuf' | 'grpc'): Promise<void> {
  const config = telemetryConfig({ otlp_endpoint: receiver.endpoint, otlp_protocol: protocol })
  const telemetry = await createTelemetry(config, { env: {} })
  const flow = await buildFlowApp({ config, telemetry })
  await runFlow(flow)
  // No forceFlush: closing the app must flush the batch processors and the metric reader.
  await flow.app.close()
}

function checkReceived(receiver: OtlpReceiver): void {
  const named = (name: string): ReceivedSpan[] => receiver.spans.filter((s) => s.name === name)
  const requests = named('POST /api/v1/train')
  const futures = named('future forward_backward')
  const [engine] = named('engine forward_backward')
  assert.equal(requests.length, 2)
  assert.equal(futures.length, 2)
  assert.ok(engine)
  assert.equal(requests[0]?.resource['service.name'], 'tuft-test')
  assert.equal(requests[0]?.resource['deployment.environment'], 'test')
  assert.equal(requests[0]?.kind, 2, 'SPAN_KIND_SERVER')
  for (const f of futures) {
    const parent = requests.find((r) => r.spanId === f.parentSpanId)
    assert.ok(parent, 'future parented by its request')
    assert.equal(parent.traceId, f.traceId)
    assert.equal(f.attributes.user_id, parent.attributes.user_id)
  }
  assert.equal(engine.parentSpanId, '')
  assert.deepEqual(engine.links.map((l) => l.spanId).sort(), futures.map((f) => f.spanId).sort())
  assert.deepEqual((engine.attributes.user_id as string[]).sort(), ['alice', 'bob'])
  const [sampleRequest] = named('POST /api/v1/sample')
  const [sampleEngine] = named('engine sample')
  assert.equal(sampleEngine?.traceId, sampleRequest?.traceId)
  assert.equal(sampleEngine?.attributes['tokens.sampled'], 3)

  const tokens = (user: string) =>
    receiver.points.findLast(
      (p) =>
        p.metric === 'tuft.training.tokens' && p.attributes.user_id === user && p.attributes.model === MODEL,
    )?.value
  assert.equal(tokens('alice'), 12)
  assert.equal(tokens('bob'), 5)
  const http = receiver.points.findLast(
    (p) => p.metric === 'http.server.request.duration' && p.attributes['http.route'] === '/api/v1/train',
  )
  assert.equal(http?.type, 'histogram')
  assert.equal(http?.count, 2)

  const sampled = receiver.logs.find((l) => l.body === 'sampled')
  assert.ok(sampled, 'log record exported')
  assert.equal(sampled.traceId, sampleRequest?.traceId)
  assert.equal(sampled.severityText, 'INFO')
  for (const line of receiver.logs.filter((l) => l.body === 'training future queued')) {
    assert.ok(
      requests.some((r) => r.traceId === line.traceId && r.spanId === line.spanId),
      'queued lines correlate to a request span',
    )
  }
}

describe('OTLP export to a loopback receiver', () => {
  test('HTTP/protobuf', async () => {
    const receiver = await startOtlpHttpReceiver()
    try {
      await exportFlow(receiver, 'http/protobuf')
      assert.ok(receiver.contentTypes.length >= 3)
      assert.ok(receiver.contentTypes.every((t) => t === 'application/x-protobuf'))
      checkReceived(receiver)
    } finally {
      await receiver.close()
    }
  })

  test('gRPC', async () => {
    const receiver = await startOtlpGrpcReceiver()
    try {
      await exportFlow(receiver, 'grpc')
      checkReceived(receiver)
    } finally {
      await receiver.close()
    }
  })
})
