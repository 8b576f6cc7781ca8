// Crash recovery end to end, on the file store and on Redis: the real `tuft` process trains through the
// TS client, is killed with SIGKILL in the middle of a stream of requests, and boots again on the same
// store and port. The recovered run is exactly at an acknowledged step (its forward loss matches the
// uninterrupted trajectory), continuing reproduces the rest of that trajectory, every acknowledged
// checkpoint and sampler still works, and every future that was in flight settles.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { ALICE, MODEL } from './helpers/app.js'
import { freePort, redisSkip, startRedis, type TestRedis } from './helpers/redis.js'
import { settle, startTuft, submit, type TuftProcess, writeTuftConfig } from './helpers/tuft-process.js'

const SEQUENCE = [1, 2, 3, 4, 5, 6, 7, 8, 9]
const DATUM = datumFromTokens(SEQUENCE)
const STEPS = 10
const BEFORE_CRASH = 3
const LR = 0.1
/** Client retries kept short so that calls in flight at the crash fail instead of waiting for the restart. */
const RETRY = { maxRetries: 2, baseDelayMs: 50, maxDelayMs: 200, futureTimeoutMs: 4000 }

let redis: TestRedis
before(async () => {
  if (redisSkip) return
  redis = await startRedis()
})
after(async () => {
  await redis?.stop()
})

const near = (a: number, b: number) => Math.abs(a - b) <= 1e-6

for (const mode of ['file', 'redis'] as const) {
  describe(`crash recovery on the ${mode} store`, { skip: mode === 'redis' && redisSkip }, () => {
    test('kill -9 mid-stream, restart, continue: the loss trajectory is the uninterrupted one', async () => {
      const dir = mkdtempSync(join(tmpdir(), `tuft-crash-${mode}-`))
      const port = await freePort()
      const persistence =
        mode === 'file'
          ? { mode: 'file', file_path: join(dir, 'state') }
          : { mode: 'redis', redis_url: redis.url, namespace: 'crash', lease_ttl_ms: 2000 }
      // Each training call takes a few ms, so that the stream is still in flight when the server dies.
      const config = writeTuftConfig({ dir, port, persistence, engine: { step_delay_ms: 15 } })
      let server: TuftProcess = await startTuft(config, dir)
      const alice = new ServiceClient({
        baseUrl: server.baseUrl,
        apiKey: ALICE,
        retry: RETRY,
        telemetry: false,
      })
      try {
        // The uninterrupted trajectory: fb loss before each step, then the loss after the last one.
        const reference = await alice.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 })
        const expected: number[] = []
        for (let step = 0; step < STEPS; step++) {
          expected.push((await reference.forwardBackward([DATUM], 'cross_entropy')).metrics['loss:sum']!)
          await reference.optimStep({ learning_rate: LR })
        }
        expected.push((await reference.forward([DATUM], 'cross_entropy')).metrics['loss:sum']!)
        const samplerPath = await reference.saveWeightsForSampler('reference-final')
        const sampler = await alice.createSamplingClient({ modelPath: samplerPath })
        const sampledBefore = (await sampler.sample([1], 1, { max_tokens: 8, temperature: 0 })).sequences[0]!
          .tokens

        // The run that crashes: a few acknowledged steps and a training checkpoint...
        const training = await alice.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 })
        for (let step = 0; step < BEFORE_CRASH; step++) {
          const out = await training.forwardBackward([DATUM], 'cross_entropy')
          assert.ok(near(out.metrics['loss:sum']!, expected[step]!))
          await training.optimStep({ learning_rate: LR })
        }
        const midPath = await training.saveState('mid')

        // ...then a stream of steps, issued without waiting.
        let acknowledged = BEFORE_CRASH
        const stream: Promise<unknown>[] = []
        let firstStreamed: Promise<unknown> | null = null
        for (let step = BEFORE_CRASH; step < STEPS; step++) {
          stream.push(training.forwardBackward([DATUM], 'cross_entropy'))
          const optim = training.optimStep({ learning_rate: LR }).then(() => {
            acknowledged++
          })
          firstStreamed ??= optim
          stream.push(optim)
        }
        await firstStreamed
        // Another run's futures whose ids we keep, submitted just before the crash.
        const other = await alice.createLoraTrainingClient(MODEL, { rank: 4, seed: 2 })
        const inFlight: string[] = []
        for (let seq = 1; seq <= 6; seq++) {
          inFlight.push(
            await submit(server.baseUrl, 'optim_step', {
              model_id: other.modelId,
              seq_id: seq,
              adam_params: { learning_rate: LR, beta1: 0.9, beta2: 0.95, eps: 1e-12 },
              type: 'optim_step',
            }),
          )
        }
        const ackedAtCrash = acknowledged
        await server.crash()

        // Nothing the client had in flight hangs: every call fails (or had finished) on its own.
        const outcome = await Promise.race([
          Promise.allSettled(stream).then(() => 'settled'),
          new Promise((resolve) => setTimeout(() => resolve('hung'), 15_000)),
        ])
        assert.equal(outcome, 'settled')

        const firstUrl = server.baseUrl
        server = await startTuft(config, dir)
        assert.equal(server.baseUrl, firstUrl, 'the client keeps talking to the same address')

        // Futures in flight at the crash settle: finished if they became durable, else a terminal server error.
        for (const id of inFlight) {
          const s = await settle(server.baseUrl, id)
          if (!s.ok) {
            assert.equal(s.category, 'server')
            assert.match(s.error, /server restarted/)
          }
        }

        // The recovered state is exactly one of the trajectory's points, at or after the last acknowledged step.
        const probe = (await training.forward([DATUM], 'cross_entropy')).metrics['loss:sum']!
        const at = expected.findIndex((loss) => near(loss, probe))
        assert.ok(at >= ackedAtCrash, `recovered at step ${at}, but ${ackedAtCrash} steps were acknowledged`)
        for (let step = at; step < STEPS; step++) {
          const out = await training.forwardBackward([DATUM], 'cross_entropy')
          assert.ok(near(out.metrics['loss:sum']!, expected[step]!), `step ${step} after the restart`)
          const optim = await training.optimStep({ learning_rate: LR })
          assert.equal(optim.metrics?.['step:max'], step + 1, 'the optimizer step counter was restored')
        }
        const final = (await training.forward([DATUM], 'cross_entropy')).metrics['loss:sum']!
        assert.ok(near(final, expected[STEPS]!))

        // Acknowledged checkpoints load (with their optimizer state), and samplers come back.
        const resumed = await alice.createTrainingClientFromState(midPath, { withOptimizer: true })
        const resumedLoss = (await resumed.forward([DATUM], 'cross_entropy')).metrics['loss:sum']!
        assert.ok(near(resumedLoss, expected[BEFORE_CRASH]!))
        const sampledAfter = (await sampler.sample([1], 1, { max_tokens: 8, temperature: 0 })).sequences[0]!
          .tokens
        assert.deepEqual(sampledAfter, sampledBefore)
        const rest = alice.createRestClient()
        const ids = (await rest.listCheckpoints(training.modelId)).checkpoints.map((c) => c.checkpoint_id)
        assert.deepEqual(ids, ['weights/mid'])
        assert.equal((await rest.getSession(await alice.getSessionId())).training_run_ids.length, 4)
        await alice.close()
        assert.equal(await server.stop(), 0, 'graceful shutdown')
      } finally {
        await alice.close()
        await server.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}
