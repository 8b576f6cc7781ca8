// Unit tests of the per-run Sequencer (spec §4.6): order, reordering, duplicates, gaps that never stall.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTuftError } from '../core/errors.js'
import { Sequencer } from '../core/services/sequencer.js'

function recorder() {
  const order: number[] = []
  const op = (n: number) => async () => {
    order.push(n)
  }
  return { order, op }
}

const settle = () => new Promise((r) => setTimeout(r, 5))

test('out-of-order arrivals execute in seq_id order while the missing one may still arrive', async () => {
  const { order, op } = recorder()
  const seq = new Sequencer({ gapWaitMs: 10_000, mayStillArrive: () => true })
  seq.submit(2, 'f2', op(2))
  seq.submit(4, 'f4', op(4))
  seq.submit(3, 'f3', op(3))
  await settle()
  assert.deepEqual(order, [])
  seq.submit(1, 'f1', op(1))
  await seq.idle()
  assert.deepEqual(order, [1, 2, 3, 4])
  seq.close()
})

test('a duplicate (model_id, seq_id) returns the first future and runs once', async () => {
  const { order, op } = recorder()
  const seq = new Sequencer({ gapWaitMs: 0, mayStillArrive: () => false })
  assert.deepEqual(seq.submit(1, 'first', op(1)), { kind: 'accepted' })
  assert.deepEqual(seq.submit(1, 'second', op(100)), { kind: 'duplicate', futureId: 'first' })
  assert.equal(seq.duplicateOf(1), 'first')
  await seq.idle()
  assert.deepEqual(order, [1])
})

test('a gap never stalls: with nothing in flight later work runs at once, and the late seq_id is refused', async () => {
  const { order, op } = recorder()
  let gaps: number[] = []
  const seq = new Sequencer({
    gapWaitMs: 60_000,
    mayStillArrive: () => false,
    onGapSkipped: (missing) => {
      gaps = missing
    },
  })
  seq.submit(1, 'f1', op(1))
  seq.submit(3, 'f3', op(3))
  await seq.idle()
  assert.deepEqual(order, [1, 3])
  assert.deepEqual(gaps, [2])
  assert.throws(
    () => seq.check(2),
    (e) => isTuftError(e) && e.statusCode === 400 && /seq_id 2 arrived after seq_id 3/.test(e.message),
  )
  // Any larger seq_id is still accepted.
  seq.submit(10, 'f10', op(10))
  await seq.idle()
  assert.deepEqual(order, [1, 3, 10])
})

test('a held gap is released by the timeout, and by skip() at once', async () => {
  const { order, op } = recorder()
  const seq = new Sequencer({ gapWaitMs: 30, mayStillArrive: () => true })
  seq.submit(2, 'f2', op(2))
  await settle()
  assert.deepEqual(order, [])
  await new Promise((r) => setTimeout(r, 50))
  await seq.idle()
  assert.deepEqual(order, [2])

  const held = new Sequencer({ gapWaitMs: 60_000, mayStillArrive: () => true })
  const r2 = recorder()
  held.submit(1, 'a', r2.op(1))
  held.submit(3, 'c', r2.op(3))
  await settle()
  assert.deepEqual(r2.order, [1])
  held.skip(2)
  await held.idle()
  assert.deepEqual(r2.order, [1, 3])
  held.close()
})

test('poke() releases a gap once nothing can fill it', async () => {
  const { order, op } = recorder()
  let inFlight = true
  const seq = new Sequencer({ gapWaitMs: 60_000, mayStillArrive: () => inFlight })
  seq.submit(2, 'f2', op(2))
  await settle()
  assert.deepEqual(order, [])
  inFlight = false
  seq.poke()
  await seq.idle()
  assert.deepEqual(order, [2])
  seq.close()
})

test('operations run one at a time, each after the previous finished', async () => {
  const events: string[] = []
  const seq = new Sequencer({ gapWaitMs: 0, mayStillArrive: () => false })
  const slow = (n: number) => async () => {
    events.push(`start ${n}`)
    await new Promise((r) => setTimeout(r, 10))
    events.push(`end ${n}`)
  }
  seq.submit(1, 'a', slow(1))
  seq.submit(2, 'b', slow(2))
  await seq.idle()
  assert.deepEqual(events, ['start 1', 'end 1', 'start 2', 'end 2'])
  assert.throws(() => seq.check(0), /seq_id must be an integer >= 1/)
})
