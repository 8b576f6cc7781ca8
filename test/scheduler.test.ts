// Unit tests of the per-model TrainingScheduler: fusion across users, fairness by tokens, the token
// budget, and isolation of a failing work when a fused engine call fails.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { RequestTrace, StepOptions, TrainItem, TrainItemResult } from '../core/engine.js'
import { TrainingScheduler } from '../core/services/scheduler.js'

interface Call {
  adapters: string[]
  users: string[]
}

/** A fake engine: records calls, can hold them on a gate, fails any call containing token 666. */
function fakeEngine() {
  const calls: Call[] = []
  let gate: Promise<void> | null = null
  let open: () => void = () => {}
  return {
    calls,
    hold() {
      gate = new Promise((r) => {
        open = r
      })
    },
    release() {
      gate = null
      open()
    },
    async forwardBackward(items: TrainItem[], o?: StepOptions): Promise<TrainItemResult[]> {
      calls.push({ adapters: items.map((i) => i.adapterId), users: (o?.requests ?? []).map((r) => r.userId) })
      if (gate) await gate
      if (items.some((i) => i.tokens.includes(666))) throw new Error('bad item')
      return items.map((i) => ({
        logprobs: new Float32Array(i.tokens.length).fill(-1),
        loss: i.tokens.length,
      }))
    },
  }
}

function item(adapterId: string, n: number, token = 1): TrainItem {
  return {
    adapterId,
    tokens: new Int32Array(n).fill(token),
    targets: new Int32Array(n),
    k: 1,
    lossFn: 'cross_entropy',
    lossConfig: {},
    weights: new Float32Array(n).fill(1),
    forwardOnly: false,
  }
}

const trace = (userId: string, requestId = userId): RequestTrace => ({ requestId, userId })

test("different users' works are fused into one engine call", async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 1000 })
  engine.hold()
  const carolRan = { fused: true }
  const first = s.submit('carol', [item('c', 4)], trace('carol'), carolRan)
  await new Promise((r) => setTimeout(r, 1))
  const aliceRan = { fused: false }
  const a = s.submit('alice', [item('a', 4), item('a', 4)], trace('alice'), aliceRan)
  const b = s.submit('bob', [item('b', 4)], trace('bob'))
  engine.release()
  const [ra, rb] = await Promise.all([a, b, first])
  assert.equal(engine.calls.length, 2)
  assert.deepEqual([carolRan.fused, aliceRan.fused], [false, true], 'each work learns whether it was fused')
  assert.deepEqual(engine.calls[1]!.adapters.sort(), ['a', 'a', 'b'])
  assert.deepEqual(engine.calls[1]!.users.sort(), ['alice', 'bob'])
  assert.equal(ra.length, 2)
  assert.equal(rb.length, 1)
  assert.equal(rb[0]!.loss, 4)
})

test('fairness by tokens: a small queue is served before a heavy user drains', async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 200 })
  engine.hold()
  const blocker = s.submit('carol', [item('c', 1)], trace('carol'))
  await new Promise((r) => setTimeout(r, 1))
  const heavy = Array.from({ length: 5 }, (_, i) =>
    s.submit('alice', [item(`a${i}`, 100)], trace('alice', `a${i}`)),
  )
  const light = s.submit('bob', [item('b', 100)], trace('bob'))
  engine.release()
  await Promise.all([blocker, light, ...heavy])
  // The first call after the blocker carries one work of each user, within the 200-token budget.
  assert.deepEqual(engine.calls[1]!.users.sort(), ['alice', 'bob'])
  for (const call of engine.calls.slice(1)) assert.ok(call.adapters.length <= 2)
})

test('a work larger than the budget still runs, alone', async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 10 })
  const results = await s.submit('alice', [item('a', 50)], trace('alice'))
  assert.equal(results[0]!.logprobs.length, 50)
  assert.equal(engine.calls.length, 1)
})

test("a failing fused call is retried work by work: only the culprit's work fails", async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 1000 })
  engine.hold()
  const blocker = s.submit('carol', [item('c', 2)], trace('carol'))
  await new Promise((r) => setTimeout(r, 1))
  const good = s.submit('alice', [item('a', 3)], trace('alice'))
  const bad = s.submit('mallory', [item('m', 3, 666)], trace('mallory'))
  const good2 = s.submit('bob', [item('b', 3)], trace('bob'))
  engine.release()
  await blocker
  assert.equal((await good)[0]!.loss, 3)
  assert.equal((await good2)[0]!.loss, 3)
  await assert.rejects(bad, /bad item/)
  // One fused attempt with all three, then one call each.
  assert.deepEqual(engine.calls[1]!.users.sort(), ['alice', 'bob', 'mallory'])
  assert.equal(engine.calls.length, 5)
  assert.equal(s.queuedWorks(), 0)
})
