// Unit tests of SampleAdmission: each user's share of sample_queue_limit (a flood never turns another
// user's request into a 429), round-robin starts within max_running_samples, and cancellation while
// waiting.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTuftError } from '../core/errors.js'
import { type Place, SampleAdmission } from '../core/services/sample-admission.js'

const admission = (queueLimit: number, runningLimit: number) =>
  new SampleAdmission({ modelName: 'm', queueLimit, runningLimit })

function busy(err: unknown): boolean {
  return isTuftError(err) && err.statusCode === 429 && /sample_queue_limit 4/.test(err.message)
}

/** Starts the place and records when it starts. */
function started(place: Place, log: string[], name: string, signal?: AbortSignal): Promise<void> {
  return place.start(signal).then(() => {
    log.push(name)
  })
}

test('a user alone may hold the whole bound; over it, 429 naming the limit', () => {
  const a = admission(4, 100)
  const places = Array.from({ length: 4 }, () => a.enter('alice', 1))
  assert.throws(() => a.enter('alice', 1), busy)
  places[0]!.leave()
  places[0]!.leave() // leaving twice gives back one place
  a.enter('alice', 1)
  assert.throws(() => a.enter('alice', 1), busy)
})

test("one user's flood never turns another user's request into a 429", () => {
  const a = admission(4, 100)
  for (let i = 0; i < 4; i++) a.enter('alice', 1)
  // Bob holds nothing: his share (4 / 2 users) is free, and alice is over hers from now on.
  a.enter('bob', 1)
  a.enter('bob', 1)
  assert.throws(() => a.enter('bob', 1), /your share \(2\)/)
  assert.throws(() => a.enter('alice', 1), busy)
  a.enter('carol', 1)
})

test('requests start round-robin between users within the running bound', async () => {
  const a = admission(100, 2)
  const log: string[] = []
  const alice = Array.from({ length: 4 }, () => a.enter('alice', 1))
  const runs = alice.map((p, i) => started(p, log, `a${i}`))
  await Promise.resolve()
  await Promise.resolve()
  assert.deepEqual(log, ['a0', 'a1'], 'two run, the rest wait')
  // Bob runs nothing: he starts at once beside alice's two (his part of the bound is 1).
  const bob = [a.enter('bob', 1), a.enter('bob', 1)]
  const bobRuns = bob.map((p, i) => started(p, log, `b${i}`))
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(log, ['a0', 'a1', 'b0'])
  // As places free up, the waiting users take turns.
  alice[0]!.leave()
  alice[1]!.leave()
  bob[0]!.leave()
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(log.slice(3).sort(), ['a2', 'b1'])
  for (const p of [...alice, ...bob]) p.leave()
  await Promise.all([...runs, ...bobRuns])
})

test('a request larger than the running bound still runs, when nothing else does', async () => {
  const a = admission(100, 4)
  const big = a.enter('alice', 64)
  await big.start()
  const small = a.enter('alice', 1)
  let ran = false
  const run = small.start().then(() => {
    ran = true
  })
  await new Promise((r) => setImmediate(r))
  assert.equal(ran, false)
  big.leave()
  await run
  assert.equal(ran, true)
})

test('a waiting request that is cancelled gives its place back and never starts', async () => {
  const a = admission(2, 1)
  const first = a.enter('alice', 1)
  await first.start()
  const second = a.enter('alice', 1)
  const abort = new AbortController()
  const waiting = second.start(abort.signal)
  abort.abort(new Error('client went away'))
  await assert.rejects(waiting, /client went away/)
  second.leave()
  const third = a.enter('alice', 1)
  first.leave()
  await third.start()
  third.leave()
})
