// Unit tests of the per-model TrainingScheduler: fusion across users, fairness by tokens (weighted), the
// token budget with large requests run in slices, and isolation of a failing work when a fused engine
// call fails.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { RequestTrace, StepOptions, TrainItem, TrainItemResult } from '../core/engine.js'
import { TrainingScheduler } from '../core/services/scheduler.js'

interface Call {
  adapters: string[]
  users: string[]
  tokens: number[]
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
      calls.push({
        adapters: items.map((i) => i.adapterId),
        users: (o?.requests ?? []).map((r) => r.userId),
        tokens: items.map((i) => i.tokens.length),
      })
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

test('a datum larger than the budget still runs, alone', async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 10 })
  const results = await s.submit('alice', [item('a', 50), item('a', 4)], trace('alice'))
  assert.deepEqual(
    results.map((r) => r.logprobs.length),
    [50, 4],
  )
  assert.deepEqual(
    engine.calls.map((c) => c.tokens),
    [[50], [4]],
  )
})

test('a request over the budget runs in slices within it, its results reassembled in order', async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 200 })
  const sizes = [100, 50, 50, 120, 30, 70, 10]
  const ran = { fused: false }
  const results = await s.submit(
    'alice',
    sizes.map((n) => item('a', n)),
    trace('alice'),
    ran,
  )
  assert.deepEqual(
    results.map((r) => r.loss),
    sizes,
  )
  assert.deepEqual(
    engine.calls.map((c) => c.tokens),
    [
      [100, 50, 50],
      [120, 30],
      [70, 10],
    ],
  )
  assert.equal(ran.fused, true, 'several calls: a replay in one call could differ in the last bits')
  const whole = { fused: true }
  await s.submit('alice', [item('a', 100)], trace('alice'), whole)
  assert.equal(whole.fused, false)
})

test("another user's small step runs between the slices of a large request", async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 256 })
  engine.hold()
  let bigDone = false
  const big = s
    .submit(
      'alice',
      Array.from({ length: 64 }, () => item('a', 128)),
      trace('alice'),
    )
    .then(() => {
      bigDone = true
    })
  await new Promise((r) => setTimeout(r, 1))
  const small = s.submit('bob', [item('b', 16)], trace('bob'))
  engine.release()
  await small
  assert.equal(bigDone, false, "bob's step finished before alice's backlog drained")
  const bobCall = engine.calls.findIndex((c) => c.users.includes('bob'))
  assert.ok(bobCall <= 1, `bob ran in call ${bobCall}`)
  for (const call of engine.calls) {
    assert.ok(call.tokens.reduce((a, b) => a + b, 0) <= 256, `no call exceeds the budget: ${call.tokens}`)
  }
  await big
  assert.equal(s.queuedWorks(), 0)
})

test("a user's requests keep their order, across slices", async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 100 })
  engine.hold()
  const done: string[] = []
  const works = ['a1', 'a2', 'a3'].map((id) =>
    s.submit('alice', [item(id, 60), item(id, 60)], trace('alice', id)).then(() => done.push(id)),
  )
  const other = s.submit('bob', [item('b', 60), item('b', 60)], trace('bob'))
  engine.release()
  await Promise.all([...works, other])
  assert.deepEqual(done, ['a1', 'a2', 'a3'])
  const alice = engine.calls.flatMap((c) => c.adapters.filter((a) => a.startsWith('a')))
  assert.deepEqual(alice, ['a1', 'a1', 'a2', 'a2', 'a3', 'a3'])
})

test('weights share engine tokens in proportion between backlogged users', async () => {
  const engine = fakeEngine()
  const weights: Record<string, number> = { alice: 3, bob: 1 }
  const s = new TrainingScheduler({
    modelName: 'm',
    engine: () => engine,
    maxBatchTokens: 400,
    userWeight: (u) => weights[u] ?? 1,
  })
  engine.hold()
  const blocker = s.submit('carol', [item('c', 1)], trace('carol'))
  await new Promise((r) => setTimeout(r, 1))
  const backlog = (u: string) =>
    s.submit(
      u,
      Array.from({ length: 200 }, () => item(u, 10)),
      trace(u),
    )
  const all = Promise.all([backlog('alice'), backlog('bob')])
  engine.release()
  await Promise.all([blocker, all])
  // While both are backlogged (alice's 2000 tokens last 6 calls), alice gets three tokens for each of bob's.
  const served = { alice: 0, bob: 0 }
  for (const call of engine.calls.slice(1, 7)) {
    for (const [i, a] of call.adapters.entries()) served[a as 'alice' | 'bob'] += call.tokens[i]!
  }
  assert.equal(served.alice, 3 * served.bob, JSON.stringify(served))
})

test('a failing datum fails its whole request; its later slices never run, others carry on', async () => {
  const engine = fakeEngine()
  const s = new TrainingScheduler({ modelName: 'm', engine: () => engine, maxBatchTokens: 20 })
  engine.hold()
  const blocker = s.submit('carol', [item('c', 1)], trace('carol'))
  await new Promise((r) => setTimeout(r, 1))
  const bad = s.submit(
    'mallory',
    [item('m', 10), item('m', 10, 666), item('m', 10), item('m', 10)],
    trace('mallory'),
  )
  const good = s.submit('alice', [item('a', 10), item('a', 10), item('a', 10)], trace('alice'))
  engine.release()
  await blocker
  await assert.rejects(bad, /bad item/)
  assert.deepEqual(
    (await good).map((r) => r.loss),
    [10, 10, 10],
  )
  const mallory = engine.calls.flatMap((c) => c.adapters.filter((a) => a === 'm'))
  assert.ok(mallory.length <= 3, `mallory's last datums were dropped: ${mallory.length} ran`)
  assert.equal(s.queuedWorks(), 0)
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
