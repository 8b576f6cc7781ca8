// Client flows against a loopback fake server (no real server needed): session bootstrap, chunked
// forward_backward with seq_ids from 1 and merged results, future polling outcomes, sampling retries.

import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  decodeForwardBackwardRequest,
  encodeForwardBackwardOutput,
  encodeSampleResponse,
} from '../core/wire/proto.js'
import { datumFromTokens } from './datum.js'
import { FutureExpiredError, RequestFailedError, ResponseFormatError } from './errors.js'
import { FakeServer } from './fake-server.js'
import { awaitFuture } from './futures.js'
import { HttpClient } from './http.js'
import { RestClient } from './rest.js'
import { ServiceClient } from './service.js'

const PROTO = { 'content-type': 'application/x-protobuf' }
const FAST = { baseDelayMs: 1, maxDelayMs: 2, maxRetries: 2, sampleRetries: 2 }
let server: FakeServer
/** Answers of retrieve_future by request id; each list is consumed one poll at a time. */
let futures: Map<string, Array<{ status?: number; headers?: Record<string, string>; body?: unknown }>>

beforeEach(async () => {
  futures = new Map()
  server = await new FakeServer()
    .on('POST /api/v1/client/config', () => ({
      body: { fwdbwd_max_chunk_len: 2, parallel_fwdbwd_chunks: false },
    }))
    .on('POST /api/v1/create_session', () => ({ body: { session_id: 's1', type: 'create_session' } }))
    .on('POST /api/v1/telemetry', () => ({ body: { status: 'accepted' } }))
    .on('POST /api/v1/retrieve_future', (req) => {
      const id = JSON.parse(req.body.toString()).request_id as string
      const queue = futures.get(id) ?? []
      return queue.length > 1 ? queue.shift()! : (queue[0] ?? { status: 404, body: { detail: 'unknown' } })
    })
    .start()
})
afterEach(() => server.stop())

function service() {
  return new ServiceClient({ baseUrl: server.url, apiKey: 'tml-test', retry: FAST, telemetry: false })
}

describe('ServiceClient', () => {
  it('refuses keys without the tml- prefix before sending anything', () => {
    assert.throws(() => new ServiceClient({ baseUrl: server.url, apiKey: 'local-dev-key' }), /tml-/)
    assert.equal(server.requests.length, 0)
  })

  it('trains: config first, create_model future, chunks with seq_ids 1.., merged outputs, then optim_step', async () => {
    server.on('POST /api/v1/create_model', () => {
      futures.set('cm', [
        { body: { type: 'try_again', request_id: 'cm', queue_state: 'active' } },
        { body: { model_id: 's1:train:0' } },
      ])
      return { body: { request_id: 'cm' } }
    })
    server.on('POST /api/v1/forward_backward', (req) => {
      const fb = decodeForwardBackwardRequest(req.body, req.headers['content-encoding'], 1 << 20)
      const outputs = fb.data.map((d) => {
        const t = d.lossFnInputs.target_tokens!
        return {
          logprobs: { dtype: 'float32' as const, shape: t.shape, data: Float32Array.from(t.data, (v) => -v) },
        }
      })
      const body = encodeForwardBackwardOutput({
        lossFnOutputType: 'ArrayRecord',
        outputs,
        metrics: { 'loss:sum': fb.seqId },
      })
      futures.set(`fb${fb.seqId}`, [
        { status: 408, body: {} },
        { headers: PROTO, body },
      ])
      return { body: { request_id: `fb${fb.seqId}`, model_id: fb.modelId } }
    })
    server.on('POST /api/v1/optim_step', (req) => {
      const body = JSON.parse(req.body.toString())
      futures.set('os', [
        { body: { metrics: { 'grad_norm:mean': body.seq_id, lr: body.adam_params.learning_rate } } },
      ])
      return { body: { request_id: 'os' } }
    })
    const client = service()
    const training = await client.createLoraTrainingClient('tiny', { rank: 4, trainUnembed: false })
    assert.equal(training.modelId, 's1:train:0')
    assert.equal(server.requests[0]!.path, '/api/v1/client/config')
    const createModel = JSON.parse(server.sent('/api/v1/create_model')[0]!.body.toString())
    assert.deepEqual(createModel.lora_config, {
      rank: 4,
      train_unembed: false,
      train_mlp: true,
      train_attn: true,
    })
    assert.equal(createModel.model_seq_id, 0)

    const data = [1, 2, 3, 4, 5].map((n) => datumFromTokens([n, n + 1, n + 2]))
    const [result, optim] = await Promise.all([
      training.forwardBackward(data, 'cross_entropy'),
      training.optimStep({ learning_rate: 0.5 }),
    ])
    const seqs = server
      .sent('/api/v1/forward_backward')
      .map((r) => decodeForwardBackwardRequest(r.body, undefined, 1 << 20).seqId)
    assert.deepEqual(seqs, [1, 2, 3])
    assert.deepEqual(
      result.outputs.map((o) => Array.from(o.logprobs!.data)),
      data.map((d) => Array.from(d.lossFnInputs.target_tokens!.data, (v) => -v)),
    )
    assert.deepEqual(result.metrics, { 'loss:sum': 6 })
    assert.deepEqual(optim.metrics, { 'grad_norm:mean': 4, lr: 0.5 })
    const fbHeaders = server.sent('/api/v1/forward_backward')[0]!.headers
    assert.equal(fbHeaders['content-type'], 'application/x-protobuf')
    const polls = server
      .sent('/api/v1/retrieve_future')
      .filter((r) => r.headers['x-tinker-request-type'] === 'ForwardBackward')
    assert.ok(polls.every((r) => r.headers.accept === 'application/x-protobuf'))
    await client.close()
  })

  it('samples: resends the same seq_id after a 429, and a new one after a 410', async () => {
    let submissions = 0
    server.on('POST /api/v1/create_sampling_session', () => ({
      body: { sampling_session_id: 's1:sample:0' },
    }))
    server.on('POST /api/v1/asample', (req) => {
      const body = JSON.parse(req.body.toString())
      if (submissions++ === 0)
        return { status: 429, headers: { 'retry-after-ms': '1' }, body: { detail: 'busy' } }
      const id = `sa${body.seq_id}`
      const response = encodeSampleResponse({
        sequences: [{ tokens: [7, 8], logprobs: [-1, -2], stopReason: 'length' }],
        promptLogprobs: [0, -0.5],
      })
      futures.set(id, [
        body.seq_id === 0 ? { status: 410, body: { detail: 'gone' } } : { headers: PROTO, body: response },
      ])
      return { body: { request_id: id, sample_sequence_ids: [`${id}-seq`] } }
    })
    const client = service()
    const sampler = await client.createSamplingClient({ baseModel: 'tiny' })
    const res = await sampler.sample([1, 2], 1, { max_tokens: 2, stop: '\n' })
    // The ids are the successful attempt's (seq_id 1), not the lost one's.
    assert.deepEqual(res.sequences, [
      { tokens: [7, 8], logprobs: [-1, -2], stopReason: 'length', sequenceId: 'sa1-seq' },
    ])
    assert.deepEqual(res.promptLogprobs, [null, -0.5])
    const sent = server.sent('/api/v1/asample').map((r) => JSON.parse(r.body.toString()))
    assert.deepEqual(
      sent.map((b) => b.seq_id),
      [0, 0, 1],
    )
    assert.deepEqual(sent[0].sampling_params, {
      temperature: 1,
      top_k: -1,
      top_p: 1,
      max_tokens: 2,
      stop: '\n',
    })
    assert.equal(server.sent('/api/v1/asample')[0]!.headers['x-tinker-sampling-backpressure'], '1')
    assert.deepEqual(await sampler.computeLogprobs([1, 2]), [null, -0.5])
    await client.close()
  })

  it('refuses a sample whose future promises a different number of sequence ids (as SDK ≥ 0.26 does)', async () => {
    server.on('POST /api/v1/create_sampling_session', () => ({
      body: { sampling_session_id: 's1:sample:0' },
    }))
    server.on('POST /api/v1/asample', () => {
      const response = encodeSampleResponse({
        sequences: [{ tokens: [7], logprobs: [-1], stopReason: 'length' }],
      })
      futures.set('two', [{ headers: PROTO, body: response }])
      return { body: { request_id: 'two', sample_sequence_ids: ['a', 'b'] } }
    })
    const client = service()
    const sampler = await client.createSamplingClient({ baseModel: 'tiny' })
    await assert.rejects(sampler.sample([1, 2], 1, { max_tokens: 1 }), ResponseFormatError)
    await client.close()
  })
})

describe('awaitFuture', () => {
  const http = () => new HttpClient({ baseUrl: server.url, apiKey: 'tml-k', retry: FAST })

  it('retries 5xx and connection-level 400s, then returns the JSON result', async () => {
    futures.set('r', [{ status: 503, body: {} }, { status: 400 }, { body: { path: 'tinker://r/weights/a' } }])
    assert.deepEqual(await awaitFuture(http(), { request_id: 'r' }, 'SaveWeights'), {
      path: 'tinker://r/weights/a',
    })
  })

  it('turns {"error","category"} into RequestFailedError and 410 into FutureExpiredError', async () => {
    futures.set('e', [{ body: { error: "missing 'advantages'", category: 'user' } }])
    await assert.rejects(
      awaitFuture(http(), { request_id: 'e' }, 'ForwardBackward'),
      (e: unknown) =>
        e instanceof RequestFailedError &&
        e.category === 'user' &&
        e.requestId === 'e' &&
        /advantages/.test(e.message),
    )
    futures.set('odd', [{ body: { error: 'x', category: 'weird' } }])
    await assert.rejects(
      awaitFuture(http(), { request_id: 'odd' }, 'OptimStep'),
      (e: unknown) => e instanceof RequestFailedError && e.category === 'unknown',
    )
    futures.set('gone', [{ status: 410, body: {} }])
    await assert.rejects(awaitFuture(http(), { request_id: 'gone' }, 'Sample'), FutureExpiredError)
  })

  it('rejects JSON where protobuf is required, and fails on other 4xx', async () => {
    futures.set('j', [{ body: { loss_fn_outputs: [] } }])
    await assert.rejects(awaitFuture(http(), { request_id: 'j' }, 'Forward'), ResponseFormatError)
    await assert.rejects(awaitFuture(http(), { request_id: 'missing' }, 'OptimStep'), /404/)
  })
})

describe('exportSessionTrace', () => {
  it('asks again while pending, returns the url once ready and throws the reason of a failure', async () => {
    const answers = [{ status: 'pending' }, { status: 'pending' }, { status: 'ready', url: 'https://t/x' }]
    server.on('GET /api/v1/sessions/s1/trace_export', (_req, n) => ({ body: answers[n] }))
    server.on('GET /api/v1/sessions/s2/trace_export', () => ({
      body: { status: 'failed', error: 'disk full' },
    }))
    const rest = new RestClient(new HttpClient({ baseUrl: server.url, apiKey: 'tml-k', retry: FAST }))
    assert.equal(await rest.exportSessionTrace('s1', 1), 'https://t/x')
    assert.equal(server.requests.filter((r) => r.path.endsWith('s1/trace_export')).length, 3)
    await assert.rejects(rest.exportSessionTrace('s2', 1), /Trace export failed for session s2: disk full/)
  })
})
