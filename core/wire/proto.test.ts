// Codec edge cases: malformed and truncated protobuf, zstd bodies and bombs, CSR densifying, unaligned
// byte slices, int64 narrowing, record splitting of outputs, sample-response invariants.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { isTuftError } from '../errors.js'
import { writeInt64 } from './packed.js'
import {
  decodeForwardBackwardOutput,
  decodeForwardBackwardRequest,
  decodeSampleResponse,
  encodeForwardBackwardOutput,
  encodeForwardBackwardRequest,
  encodeSampleResponse,
  type ForwardBackwardRequest,
} from './proto.js'
import { encodeMessage, pb } from './proto-root.js'
import { rawZstdFrame, rleZstdBomb } from './zstd-frames.js'

const FIXTURES = new URL('../../spec/fixtures/', import.meta.url)
const CE = readFileSync(new URL('fwdbwd_request_cross_entropy.bin', FIXTURES))
const MAX = 1024 * 1024

function rejects(fn: () => unknown, code: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isTuftError(err), `expected a TuftError, got ${String(err)}`)
    assert.equal(err.code, code)
    if (pattern) assert.match(err.message, pattern)
    return true
  })
}

function request(
  lossFnInputs: ForwardBackwardRequest['data'][number]['lossFnInputs'],
): ForwardBackwardRequest {
  return {
    modelId: 'm',
    seqId: 1,
    lossFn: 'cross_entropy',
    lossFnConfig: {},
    forwardOnly: false,
    data: [{ chunks: [{ type: 'encoded_text', tokens: Int32Array.of(1, 2) }], lossFnInputs }],
  }
}

/** A raw Tensor message, so tests can send what our own encoder never would. */
function rawRequest(tensor: Record<string, unknown>): Buffer {
  return encodeMessage(pb.ForwardBackwardRequest, {
    model_id: 'm',
    seq_id: 1,
    loss_fn: 'cross_entropy',
    data: [
      { model_input: [{ encoded_text: { tokens: new Uint8Array(8) } }], loss_fn_inputs: { weights: tensor } },
    ],
  })
}

describe('decodeForwardBackwardRequest: malformed bodies', () => {
  it('rejects every truncation of a valid body with a 400', () => {
    for (let n = 0; n < CE.length; n++)
      rejects(() => decodeForwardBackwardRequest(CE.subarray(0, n), '', MAX), 'TUFT_BAD_REQUEST')
  })

  it('rejects garbage with a 400 naming the message', () => {
    rejects(
      () => decodeForwardBackwardRequest(Buffer.alloc(16, 0xff), '', MAX),
      'TUFT_BAD_REQUEST',
      /ForwardBackwardRequest/,
    )
    rejects(() => decodeForwardBackwardRequest(Buffer.from('{"model_id":"m"}'), '', MAX), 'TUFT_BAD_REQUEST')
  })

  it('requires seq_id >= 1, a model id and a loss', () => {
    const base = request({})
    rejects(
      () => decodeForwardBackwardRequest(encodeForwardBackwardRequest({ ...base, seqId: 0 }), '', MAX),
      'TUFT_BAD_REQUEST',
      /seq_id/,
    )
    rejects(
      () => decodeForwardBackwardRequest(encodeForwardBackwardRequest({ ...base, modelId: '' }), '', MAX),
      'TUFT_BAD_REQUEST',
      /model_id/,
    )
    rejects(
      () => decodeForwardBackwardRequest(encodeForwardBackwardRequest({ ...base, lossFn: '' }), '', MAX),
      'TUFT_BAD_REQUEST',
      /loss_fn/,
    )
  })

  it('caps uncompressed bodies (413) and refuses unknown encodings (415)', () => {
    rejects(() => decodeForwardBackwardRequest(CE, undefined, CE.length - 1), 'TUFT_PAYLOAD_TOO_LARGE')
    rejects(() => decodeForwardBackwardRequest(CE, 'gzip', MAX), 'TUFT_UNSUPPORTED_MEDIA_TYPE')
  })
})

describe('decodeForwardBackwardRequest: zstd', () => {
  const plain = decodeForwardBackwardRequest(CE, undefined, MAX)

  it('decodes single- and multi-block frames, and concatenated frames', () => {
    assert.deepEqual(decodeForwardBackwardRequest(rawZstdFrame(CE), 'zstd', MAX), plain)
    assert.deepEqual(decodeForwardBackwardRequest(rawZstdFrame(CE, { blockSize: 7 }), 'ZSTD', MAX), plain)
    const two = Buffer.concat([rawZstdFrame(CE.subarray(0, 100)), rawZstdFrame(CE.subarray(100))])
    assert.deepEqual(decodeForwardBackwardRequest(two, 'zstd', MAX), plain)
  })

  it('rejects bad magic, truncated frames and reserved block types with a 400', () => {
    const frame = rawZstdFrame(CE)
    rejects(() => decodeForwardBackwardRequest(CE, 'zstd', MAX), 'TUFT_BAD_REQUEST', /zstd/)
    rejects(
      () => decodeForwardBackwardRequest(frame.subarray(0, frame.length - 5), 'zstd', MAX),
      'TUFT_BAD_REQUEST',
    )
    rejects(() => decodeForwardBackwardRequest(Buffer.alloc(0), 'zstd', MAX), 'TUFT_BAD_REQUEST')
    const reserved = Buffer.from(frame)
    reserved[6] = reserved[6]! | 0b110 // block type 3
    rejects(() => decodeForwardBackwardRequest(reserved, 'zstd', MAX), 'TUFT_BAD_REQUEST', /reserved/)
  })

  it('stops a zstd bomb at the cap with a 413', () => {
    const bomb = rleZstdBomb(80) // 10 MiB from 330 bytes
    assert.ok(bomb.length < 400)
    rejects(() => decodeForwardBackwardRequest(bomb, 'zstd', MAX), 'TUFT_PAYLOAD_TOO_LARGE')
  })

  it('refuses a frame declaring more than the cap before allocating it', () => {
    rejects(
      () => decodeForwardBackwardRequest(rawZstdFrame(CE, { contentSize: 2 ** 40 }), 'zstd', MAX),
      'TUFT_PAYLOAD_TOO_LARGE',
    )
  })
})

describe('tensors', () => {
  it('densifies CSR and charges the dense size against the cap', () => {
    const csr = {
      values: new Uint8Array(Float32Array.of(0.5, 2).buffer),
      crow_indices: writeInt64([0, 1, 1, 2], 'crow'),
      col_indices: writeInt64([2, 0], 'col'),
    }
    const decoded = decodeForwardBackwardRequest(
      rawRequest({ sparse_csr: csr, dtype: 1, shape: [3, 3] }),
      '',
      MAX,
    )
    assert.deepEqual(Array.from(decoded.data[0]!.lossFnInputs.weights!.data), [0, 0, 0.5, 0, 0, 0, 2, 0, 0])
    rejects(
      () =>
        decodeForwardBackwardRequest(rawRequest({ sparse_csr: csr, dtype: 1, shape: [3, 2 ** 30] }), '', MAX),
      'TUFT_PAYLOAD_TOO_LARGE',
    )
    const badCol = { ...csr, col_indices: writeInt64([5, 0], 'col') }
    rejects(
      () =>
        decodeForwardBackwardRequest(rawRequest({ sparse_csr: badCol, dtype: 1, shape: [3, 3] }), '', MAX),
      'TUFT_BAD_REQUEST',
      /data\[0\]\.loss_fn_inputs\['weights'\].*column index 5/,
    )
    const badRows = { ...csr, crow_indices: writeInt64([0, 2], 'crow') }
    rejects(
      () =>
        decodeForwardBackwardRequest(rawRequest({ sparse_csr: badRows, dtype: 1, shape: [3, 3] }), '', MAX),
      'TUFT_BAD_REQUEST',
      /crow_indices/,
    )
  })

  it('copies values out of unaligned slices', () => {
    const plain = decodeForwardBackwardRequest(CE, undefined, MAX)
    for (let shift = 1; shift < 8; shift++) {
      const host = Buffer.alloc(CE.length + shift)
      CE.copy(host, shift)
      assert.deepEqual(decodeForwardBackwardRequest(host.subarray(shift), undefined, MAX), plain)
    }
  })

  it('names the datum and key on shape, dtype and range errors', () => {
    const where = /data\[0\]\.loss_fn_inputs\['weights'\]/
    rejects(
      () =>
        decodeForwardBackwardRequest(rawRequest({ dense: new Uint8Array(8), dtype: 1, shape: [3] }), '', MAX),
      'TUFT_BAD_REQUEST',
      where,
    )
    rejects(
      () =>
        decodeForwardBackwardRequest(rawRequest({ dense: new Uint8Array(8), dtype: 0, shape: [2] }), '', MAX),
      'TUFT_BAD_REQUEST',
      /dtype/,
    )
    rejects(
      () => decodeForwardBackwardRequest(rawRequest({ dense: new Uint8Array(6), dtype: 1 }), '', MAX),
      'TUFT_BAD_REQUEST',
      where,
    )
    const big = writeInt64([1, 2 ** 31], 'big')
    rejects(
      () => decodeForwardBackwardRequest(rawRequest({ dense: big, dtype: 2, shape: [2] }), '', MAX),
      'TUFT_BAD_REQUEST',
      /32 bits/,
    )
    const negative = decodeForwardBackwardRequest(
      rawRequest({ dense: writeInt64([-1, -(2 ** 31)], 'n'), dtype: 2 }),
      '',
      MAX,
    )
    assert.deepEqual(Array.from(negative.data[0]!.lossFnInputs.weights!.data), [-1, -(2 ** 31)])
  })

  it('round-trips int32 and bfloat16 tensors (bfloat16 rounded to nearest even)', () => {
    const req = request({
      ids: { dtype: 'int32', shape: [2], data: Int32Array.of(7, -3) },
      half: { dtype: 'bfloat16', shape: [1, 3], data: Float32Array.of(1.5, -2, 1 / 3) },
    })
    const back = decodeForwardBackwardRequest(encodeForwardBackwardRequest(req), '', MAX).data[0]!
      .lossFnInputs
    assert.deepEqual(Array.from(back.ids!.data), [7, -3])
    assert.deepEqual(back.half!.shape, [1, 3])
    assert.deepEqual(Array.from(back.half!.data), [1.5, -2, 0.333984375])
  })

  it('refuses to encode a tensor whose data does not fit its shape', () => {
    rejects(
      () =>
        encodeForwardBackwardRequest(
          request({ w: { dtype: 'float32', shape: [3], data: new Float32Array(2) } }),
        ),
      'TUFT_BAD_REQUEST',
    )
  })
})

describe('ForwardBackwardOutput records', () => {
  const t = (shape: number[], start: number) => {
    const n = shape.reduce((a, b) => a * b, 1)
    return { dtype: 'float32' as const, shape, data: Float32Array.from({ length: n }, (_, i) => start + i) }
  }

  it('starts a new record whenever dtype or trailing shape changes, and decodes back in order', () => {
    const outputs = [
      { logprobs: t([3], 0) },
      { logprobs: t([2], 10) },
      { logprobs: t([3, 2], 20) },
      { logprobs: t([1, 2], 30) },
      { logprobs: { dtype: 'int64' as const, shape: [2], data: Int32Array.of(5, 6) } },
    ]
    const bytes = encodeForwardBackwardOutput({
      lossFnOutputType: 'ArrayRecord',
      outputs,
      metrics: { 'loss:sum': 2 },
    })
    const raw = pb.ForwardBackwardOutput.decode(bytes) as unknown as { loss_fn_outputs: unknown[] }
    assert.equal(raw.loss_fn_outputs.length, 3)
    const back = decodeForwardBackwardOutput(bytes)
    assert.deepEqual(
      back.outputs.map((o) => ({
        dtype: o.logprobs!.dtype,
        shape: o.logprobs!.shape,
        data: Array.from(o.logprobs!.data),
      })),
      outputs.map((o) => ({
        dtype: o.logprobs.dtype,
        shape: o.logprobs.shape,
        data: Array.from(o.logprobs.data),
      })),
    )
    assert.deepEqual(back.metrics, { 'loss:sum': 2 })
  })

  it('encodes an empty result and rejects datums with different fields', () => {
    const empty = decodeForwardBackwardOutput(
      encodeForwardBackwardOutput({ lossFnOutputType: 'ArrayRecord', outputs: [], metrics: {} }),
    )
    assert.deepEqual(empty.outputs, [])
    rejects(
      () =>
        encodeForwardBackwardOutput({
          lossFnOutputType: 'x',
          outputs: [{ a: t([1], 0) }, { b: t([1], 0) }],
          metrics: {},
        }),
      'TUFT_INTERNAL',
    )
  })

  it('keeps only the text after the last colon of the output type', () => {
    const bytes = encodeForwardBackwardOutput({
      lossFnOutputType: 'tinker:ArrayRecord',
      outputs: [],
      metrics: {},
    })
    assert.equal(decodeForwardBackwardOutput(bytes).lossFnOutputType, 'ArrayRecord')
  })
})

describe('SampleResponse', () => {
  it('omits absent prompt logprobs and logprobs, and rejects unknown stop reasons', () => {
    const view = decodeSampleResponse(
      encodeSampleResponse({ sequences: [{ tokens: [1, 2], stopReason: 'length' }] }),
    )
    assert.deepEqual(view, {
      sequences: [{ tokens: [1, 2], logprobs: null, stopReason: 'length' }],
      promptLogprobs: null,
      topkPromptLogprobs: null,
      promptCacheHitTokens: 0,
    })
    rejects(
      () => encodeSampleResponse({ sequences: [{ tokens: [1], stopReason: 'eos' as 'stop' }] }),
      'TUFT_INTERNAL',
    )
    const unknownReason = encodeMessage(pb.SampleResponse, { sequences: [{ stop_reason: 7 }] })
    rejects(() => decodeSampleResponse(unknownReason), 'TUFT_BAD_REQUEST', /stop reason/)
  })

  it('rejects mismatched logprobs and top-K matrices', () => {
    rejects(
      () => encodeSampleResponse({ sequences: [{ tokens: [1, 2], logprobs: [0], stopReason: 'stop' }] }),
      'TUFT_INTERNAL',
    )
    rejects(
      () =>
        encodeSampleResponse({
          sequences: [],
          topkPromptLogprobs: { tokenIds: [1], logprobs: [0], k: 2, promptLength: 1 },
        }),
      'TUFT_INTERNAL',
    )
  })
})
