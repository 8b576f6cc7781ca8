// The standard OTEL_* variables end to end: the real `tuft` process, booted with a config file that
// points telemetry elsewhere, exports to the loopback receiver that OTEL_EXPORTER_OTLP_ENDPOINT and
// _PROTOCOL name (over HTTP/protobuf and gRPC), with the OTEL_EXPORTER_OTLP_HEADERS on every export,
// the OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES on every signal, and OTEL_TRACES_SAMPLER=
// traceidratio deciding by trace id even against a client's sampled traceparent. A bad protocol name
// stops the boot with a TUFT_CONFIG message.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { ALICE } from './helpers/app.js'
import { type OtlpReceiver, startOtlpGrpcReceiver, startOtlpHttpReceiver } from './helpers/otlp-receiver.js'
import { runTuft, startTuft, writeTuftConfig } from './helpers/tuft-process.js'

/** At ratio 0.5, traceidratio keeps a trace id whose 32-bit words XOR below 2^31 and drops the rest. */
const KEPT_TRACE = '0000000000000000000000000000abcd'
const DROPPED_TRACE = 'f0000000000000000000000000000000'
const ROUTE = '/api/v1/get_server_capabilities'

const ENV = {
  OTEL_EXPORTER_OTLP_HEADERS: 'x-tuft-test=token%20123,x-team=ml',
  OTEL_SERVICE_NAME: 'tuft-from-env',
  OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=staging,k8s.pod.name=tuft-0',
  OTEL_TRACES_SAMPLER: 'traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '0.5',
}

/** The file says grpc to a dead port, service "tuft-file": the environment must win on each. */
function configIn(dir: string, protocol: string): string {
  return writeTuftConfig({
    dir,
    port: 0,
    persistence: { mode: 'memory' },
    telemetry: {
      enabled: true,
      service_name: 'tuft-file',
      otlp_endpoint: 'http://127.0.0.1:9',
      otlp_protocol: protocol === 'grpc' ? 'http/protobuf' : 'grpc',
      resource_attributes: { 'deployment.environment': 'file', team: 'ml' },
    },
  })
}

async function capabilities(baseUrl: string, traceId: string): Promise<void> {
  const res = await fetch(`${baseUrl}${ROUTE}`, {
    headers: { 'x-api-key': ALICE, traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  })
  assert.equal(res.status, 200)
  await res.arrayBuffer()
}

for (const protocol of ['http/protobuf', 'grpc'] as const) {
  describe(`OTEL_* variables drive the real process (${protocol})`, () => {
    let receiver: OtlpReceiver
    let dir: string
    before(async () => {
      receiver = protocol === 'grpc' ? await startOtlpGrpcReceiver() : await startOtlpHttpReceiver()
      dir = mkdtempSync(join(tmpdir(), 'tuft-otel-env-'))
      const tuft = await startTuft(configIn(dir, protocol), dir, {
        ...ENV,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      })
      try {
        await capabilities(tuft.baseUrl, KEPT_TRACE)
        await capabilities(tuft.baseUrl, DROPPED_TRACE)
      } finally {
        assert.equal(await tuft.stop(), 0, tuft.output()) // SIGTERM: app.close() flushes every signal
      }
    })
    after(async () => {
      await receiver.close()
      rmSync(dir, { recursive: true, force: true })
    })

    test('spans, metrics and logs all arrive, with the headers of OTEL_EXPORTER_OTLP_HEADERS', () => {
      assert.ok(receiver.spans.length > 0, 'spans')
      assert.ok(receiver.points.length > 0, 'metric points')
      assert.ok(receiver.logs.length > 0, 'log records')
      assert.deepEqual(
        new Set(receiver.requests.map((r) => r.signal)),
        new Set(['traces', 'metrics', 'logs']),
      )
      for (const { signal, headers } of receiver.requests) {
        assert.equal(headers['x-tuft-test'], 'token 123', `${signal} export carries the header`)
        assert.equal(headers['x-team'], 'ml')
      }
    })

    test('every signal carries OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES over the file', () => {
      const resources = [...receiver.spans, ...receiver.points, ...receiver.logs].map((r) => r.resource)
      for (const resource of resources) {
        assert.equal(resource['service.name'], 'tuft-from-env')
        assert.equal(resource['deployment.environment'], 'staging')
        assert.equal(resource['k8s.pod.name'], 'tuft-0')
        assert.equal(resource.team, 'ml', 'file attributes the environment does not name stay')
      }
      const http = receiver.points.findLast(
        (p) => p.metric === 'http.server.request.duration' && p.attributes['http.route'] === ROUTE,
      )
      assert.equal(http?.count, 2, 'metrics count every request, sampled or not')
    })

    test('traceidratio at 0.5 decides by trace id, overriding the client’s sampled flag', () => {
      const traces = new Set(receiver.spans.filter((s) => s.name === `GET ${ROUTE}`).map((s) => s.traceId))
      assert.ok(traces.has(KEPT_TRACE), 'the trace id under the ratio is exported')
      assert.ok(!traces.has(DROPPED_TRACE), 'the one over it is not, though its traceparent says sampled')
    })
  })
}

describe('a bad OTEL_* value stops the boot', () => {
  test('OTEL_EXPORTER_OTLP_PROTOCOL=http/xml: exit code 2 and a TUFT_CONFIG message naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tuft-otel-env-bad-'))
    try {
      const { code, output } = await runTuft(['--config', configIn(dir, 'http/protobuf')], dir, {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/xml',
      })
      assert.equal(code, 2, output)
      assert.match(
        output,
        /TUFT_CONFIG: telemetry: OTEL_EXPORTER_OTLP_PROTOCOL='http\/xml' is invalid: expected http\/protobuf, http\/json, grpc/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
