// What telemetry costs on the request path: forward_backward round trips (submit + retrieve_future)
// through the real app over HTTP with the engine double, telemetry off vs Prometheus only vs full OTLP
// export to a loopback receiver. Prints latency percentiles per mode. `--requests N` (default 300).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { buildApp } from '../core/app.js'
import { EngineRegistry } from '../core/registry.js'
import { createLogger } from '../core/telemetry/logging.js'
import { ALICE, MODEL, testConfig } from '../test/helpers/app.js'
import { createEngineDouble } from '../test/helpers/engine-double.js'
import { startOtlpHttpReceiver } from '../test/helpers/otlp-receiver.js'

const { values } = parseArgs({ options: { requests: { type: 'string', default: '300' } } })
const REQUESTS = Number(values.requests)
const WARMUP = 30

async function run(telemetry: Record<string, unknown>): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-bench-telemetry-'))
  const config = await testConfig(dir, { log_level: 'warn', telemetry })
  const registry = new EngineRegistry()
  registry.register(createEngineDouble('double'))
  const logger = createLogger(config)
  const app = await buildApp(config, { registry, configDir: dir, logger })
  await app.listen({ host: '127.0.0.1', port: 0 })
  await app.models.loadAll()
  const address = app.server.address()
  if (address === null || typeof address !== 'object') throw new Error('no address')
  const client = new ServiceClient({ baseUrl: `http://127.0.0.1:${address.port}`, apiKey: ALICE })
  try {
    const training = await client.createLoraTrainingClient(MODEL, { rank: 4 })
    const data = [datumFromTokens([1, 2, 3, 4, 5, 6, 7, 8])]
    const ms: number[] = []
    for (let i = 0; i < WARMUP + REQUESTS; i++) {
      const t = performance.now()
      await training.forwardBackward(data, 'cross_entropy')
      if (i >= WARMUP) ms.push(performance.now() - t)
    }
    return ms
  } finally {
    await client.close()
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const receiver = await startOtlpHttpReceiver()
try {
  const modes: [string, Record<string, unknown>][] = [
    ['off', { enabled: false }],
    ['prometheus only', { enabled: false, prometheus: { enabled: true } }],
    [
      'full (OTLP http/protobuf)',
      { enabled: true, otlp_endpoint: receiver.endpoint, prometheus: { enabled: true } },
    ],
  ]
  console.log(
    `forward_backward round trips (submit + retrieve_future), ${REQUESTS} per mode after ${WARMUP} warm-up`,
  )
  console.log('mode                          mean ms   p50 ms   p99 ms')
  for (const [mode, telemetry] of modes) {
    const ms = (await run(telemetry)).sort((a, b) => a - b)
    const mean = ms.reduce((a, b) => a + b, 0) / ms.length
    console.log(
      `${mode.padEnd(28)} ${mean.toFixed(3).padStart(8)} ${pct(ms, 50).toFixed(3).padStart(8)} ${pct(ms, 99).toFixed(3).padStart(8)}`,
    )
  }
  console.log(`receiver got ${receiver.spans.length} spans, ${receiver.logs.length} log records`)
} finally {
  await receiver.close()
}
