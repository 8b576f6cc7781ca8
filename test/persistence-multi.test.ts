// Two `tuft` processes on one Redis (and one checkpoint_dir): both serve every user and every listing;
// a run's training requests sent to the process that does not hold it are relayed to its holder, and
// its futures are answered by either; when the holder is killed, the other takes the run over from its
// durable state once the lease lapses, and training continues exactly where it was acknowledged.

import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { ALICE, BOB, MODEL } from './helpers/app.js'
import { freePort, redisSkip, startRedis } from './helpers/redis.js'
import { fwdBwdBody, lossOf, settle, startTuft, submit, writeTuftConfig } from './helpers/tuft-process.js'

const SEQUENCE = [3, 1, 4, 1, 5, 9, 2, 6]
const LR = 0.1
const near = (a: number, b: number) => Math.abs(a - b) <= 1e-6

test('two servers on one Redis: relay to the holder, take over when it dies', {
  skip: redisSkip,
}, async () => {
  const redis = await startRedis()
  const dir = mkdtempSync(join(tmpdir(), 'tuft-multi-'))
  const persistence = { mode: 'redis', redis_url: redis.url, namespace: 'multi', lease_ttl_ms: 1500 }
  const a = await startTuft(writeTuftConfig({ dir, port: await freePort(), persistence }), dir)
  const b = await startTuft(writeTuftConfig({ dir, port: await freePort(), persistence }), dir)
  const onA = new ServiceClient({ baseUrl: a.baseUrl, apiKey: ALICE, telemetry: false })
  const bobOnB = new ServiceClient({ baseUrl: b.baseUrl, apiKey: BOB, telemetry: false })
  const aliceOnB = new ServiceClient({ baseUrl: b.baseUrl, apiKey: ALICE, telemetry: false })
  try {
    // The reference trajectory, trained on B by another user.
    const reference = await bobOnB.createLoraTrainingClient(MODEL, { rank: 4, seed: 5 })
    const expected: number[] = []
    for (let step = 0; step < 5; step++) {
      expected.push(
        (await reference.forwardBackward([datumFromTokens(SEQUENCE)], 'cross_entropy')).metrics['loss:sum']!,
      )
      await reference.optimStep({ learning_rate: LR })
    }

    // Alice's run is created on A, which holds it; two steps there (seq_ids 1-4).
    const training = await onA.createLoraTrainingClient(MODEL, { rank: 4, seed: 5 })
    for (let step = 0; step < 2; step++) {
      const out = await training.forwardBackward([datumFromTokens(SEQUENCE)], 'cross_entropy')
      assert.ok(near(out.metrics['loss:sum']!, expected[step]!))
      await training.optimStep({ learning_rate: LR })
    }
    const runId = training.modelId

    // B answers listings and run metadata for runs it does not hold.
    const rest = aliceOnB.createRestClient()
    assert.equal((await rest.getTrainingRun(runId)).training_run_id, runId)
    assert.equal((await rest.listTrainingRuns()).cursor.total_count, 1)

    // Training requests sent to B are relayed to A; B answers their futures (watched through Redis).
    const optim = (seq: number) => ({
      model_id: runId,
      seq_id: seq,
      adam_params: { learning_rate: LR, beta1: 0.9, beta2: 0.95, eps: 1e-12 },
      type: 'optim_step',
    })
    const fb5 = await submit(b.baseUrl, 'forward_backward', fwdBwdBody(runId, 5, SEQUENCE))
    assert.ok(near(lossOf(await settle(b.baseUrl, fb5)), expected[2]!))
    const op6 = await settle(b.baseUrl, await submit(b.baseUrl, 'optim_step', optim(6)))
    assert.ok(op6.ok)
    assert.equal(
      (JSON.parse(op6.body.toString()) as { metrics: Record<string, number> }).metrics['step:max'],
      3,
    )
    const optimsOnA = a.output().split('"url":"/api/v1/optim_step"').length - 1
    assert.equal(optimsOnA, 3, "A served its client's two optim_steps and the one relayed by B")

    // A dies. B's next request for the run waits for A's lease to lapse, then recovers the run itself.
    await a.crash()
    const started = Date.now()
    const fb7 = await submit(b.baseUrl, 'forward_backward', fwdBwdBody(runId, 7, SEQUENCE))
    const loss7 = lossOf(await settle(b.baseUrl, fb7))
    assert.ok(near(loss7, expected[3]!), `after the takeover: ${loss7} vs ${expected[3]}`)
    assert.ok(Date.now() - started < 10_000, 'the takeover waits about one lease period')
    const op8 = await settle(b.baseUrl, await submit(b.baseUrl, 'optim_step', optim(8)))
    assert.ok(op8.ok)
    assert.equal(
      (JSON.parse(op8.body.toString()) as { metrics: Record<string, number> }).metrics['step:max'],
      4,
    )
    const fb9 = await submit(b.baseUrl, 'forward_backward', fwdBwdBody(runId, 9, SEQUENCE, true))
    assert.ok(near(lossOf(await settle(b.baseUrl, fb9)), expected[4]!))
    assert.match(b.output(), /training run recovered from its durable state/)
  } finally {
    await onA.close()
    await bobOnB.close()
    await aliceOnB.close()
    await a.stop()
    await b.stop()
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})
