// Chunking by datum count and estimated bytes, metric merging by reduction (spec §5.6), and the datum
// builders (spec §5.2-5.3).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { chunkData, mergeChunkResults, mergeMetrics } from './chunks.js'
import { datumFromTokens, estimateDatumBytes, makeDatum, toTensor } from './datum.js'

describe('chunkData', () => {
  const d = (n: number) => datumFromTokens(Array.from({ length: n + 1 }, (_, i) => i))
  it('splits by count and by estimated bytes; an oversized datum travels alone', () => {
    assert.equal(estimateDatumBytes(d(4)), 4 * 4 + 4 * 8 + 4 * 4)
    assert.deepEqual(
      chunkData([d(1), d(1), d(1), d(1), d(1)], 2, 1e9).map((c) => c.length),
      [2, 2, 1],
    )
    const sizes = chunkData([d(4), d(4), d(100), d(4)], 10, 130).map((c) => c.map(estimateDatumBytes))
    assert.deepEqual(sizes, [[64, 64], [1600], [64]])
    assert.deepEqual(chunkData([], 2, 10), [])
  })
})

describe('mergeMetrics', () => {
  it('combines each reduction across chunks, weighting means by datum counts', () => {
    const merged = mergeMetrics(
      [
        {
          'loss:sum': 1,
          'acc:mean': 1,
          'lo:min': 3,
          'hi:max': 3,
          'gap:slack': 1,
          'h:hash_unordered': 5,
          'id:unique': 7,
          'x:median': 1,
        },
        {
          'loss:sum': 2,
          'acc:mean': 0,
          'lo:min': 2,
          'hi:max': 4,
          'gap:slack': 4,
          'h:hash_unordered': 6,
          'id:unique': 8,
          'x:median': 1,
        },
      ],
      [3, 1],
    )
    assert.deepEqual(merged, {
      'loss:sum': 3,
      'acc:mean': 0.75,
      'lo:min': 2,
      'hi:max': 4,
      'gap:slack': 4 - 1.75,
      'h:hash_unordered': 11,
      'id:unique': 7,
      'id:unique_1': 8,
    })
    const swapped = mergeMetrics([{ 'h:hash_unordered': 6 }, { 'h:hash_unordered': 5 }], [1, 1])
    assert.equal(swapped['h:hash_unordered'], 11)
  })

  it('drops keys missing from a chunk and rejects keys without exactly one colon', () => {
    assert.deepEqual(mergeMetrics([{ 'a:sum': 1, 'b:sum': 1 }, { 'a:sum': 1 }], [1, 1]), { 'a:sum': 2 })
    assert.throws(() => mergeMetrics([{ loss: 1 }], [1]), /loss/)
    assert.throws(() => mergeMetrics([{ 'a:b:sum': 1 }], [1]), /a:b:sum/)
  })

  it('concatenates outputs in chunk order', () => {
    const t = (v: number) => ({
      logprobs: { dtype: 'float32' as const, shape: [1], data: Float32Array.of(v) },
    })
    const merged = mergeChunkResults([
      { lossFnOutputType: 'ArrayRecord', outputs: [t(1), t(2)], metrics: { 'loss:sum': 1 } },
      { lossFnOutputType: 'ArrayRecord', outputs: [t(3)], metrics: { 'loss:sum': 2 } },
    ])
    assert.deepEqual(
      merged.outputs.map((o) => o.logprobs!.data[0]),
      [1, 2, 3],
    )
    assert.deepEqual(merged.metrics, { 'loss:sum': 3 })
  })
})

describe('datum builders', () => {
  it('shifts a sequence into inputs and targets, dropping the first weight', () => {
    const d = datumFromTokens([10, 11, 12, 13], [0, 0, 1, 1])
    assert.deepEqual(d.chunks, [{ type: 'encoded_text', tokens: Int32Array.of(10, 11, 12) }])
    assert.deepEqual(d.lossFnInputs.target_tokens, {
      dtype: 'int64',
      shape: [3],
      data: Int32Array.of(11, 12, 13),
    })
    assert.deepEqual(Array.from(d.lossFnInputs.weights!.data), [0, 1, 1])
    assert.deepEqual(Array.from(datumFromTokens([1, 2]).lossFnInputs.weights!.data), [1])
    assert.throws(() => datumFromTokens([1]), RangeError)
    assert.throws(() => datumFromTokens([1, 2, 3], [1, 1]), RangeError)
  })

  it('types plain lists by key like the SDK, and builds 2-D tensors from rows', () => {
    assert.equal(toTensor('advantages', [1, 2]).dtype, 'float32')
    assert.deepEqual(
      toTensor('target_tokens', [
        [1, 2],
        [3, 4],
        [5, 6],
      ]).shape,
      [3, 2],
    )
    assert.equal(toTensor('custom', Int32Array.of(1)).dtype, 'int64')
    assert.throws(() => toTensor('custom', [1]), /custom/)
    assert.throws(() => toTensor('weights', [[1], [1, 2]]), /rows/)
    const d = makeDatum([1, 2, 3], { target_tokens: [2, 3, 4], weights: [1, 1, 1] })
    assert.equal(d.lossFnInputs.weights!.data instanceof Float32Array, true)
  })
})
