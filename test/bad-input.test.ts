// Bad input over real HTTP: missing/wrong keys, malformed JSON, broken protobuf and zstd, oversized
// bodies, wrong dtypes and shapes, unknown ids, out-of-order and duplicate seq_ids. Each gets the
// spec's 4xx answer (with a body and Content-Length) while another user's training flow stays healthy.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { datumFromTokens, ServiceClient } from '../client/index.js'
import { encodeForwardBackwardRequest } from '../core/wire/proto.js'
import { rawZstdFrame, rleZstdBomb } from '../core/wire/zstd-frames.js'
import { ALICE, BOB, MODEL, startTestApp, type TestApp, VOCAB } from './helpers/app.js'
import { type Answer, assertError, call, ceRequest, listen, postFwdBwd, result } from './helpers/http.js'

const BODY_LIMIT = 256 * 1024
let t: TestApp
let base: string

before(async () => {
  t = await startTestApp({ server: { body_limit_bytes: BODY_LIMIT } })
  base = await listen(t.app)
})

after(async () => {
  await t.close()
})

/** Alice trains through the client the whole time; her loss must fall and nothing of hers may fail. */
async function healthyFlow(): Promise<number[]> {
  const alice = new ServiceClient({ baseUrl: base, apiKey: ALICE })
  try {
    const training = await alice.createLoraTrainingClient(MODEL, { rank: 4, seed: 1 })
    const datum = datumFromTokens([5, 6, 7, 8, 9, 10])
    const losses: number[] = []
    for (let i = 0; i < 10; i++) {
      losses.push((await training.forwardBackward([datum], 'cross_entropy')).metrics['loss:sum']!)
      await training.optimStep({ learning_rate: 0.2 })
    }
    return losses
  } finally {
    await alice.close()
  }
}

async function bobRun(): Promise<string> {
  const session = (await call(base, 'POST', '/create_session', { key: BOB, json: {} })).json.session_id
  const created = await call(base, 'POST', '/create_model', {
    key: BOB,
    json: { session_id: session, model_seq_id: 0, base_model: MODEL, lora_config: { rank: 4 } },
  })
  await result(base, BOB, created.json.request_id)
  return created.json.model_id
}

async function badInputs(): Promise<void> {
  // Authentication.
  assertError(await call(base, 'POST', '/create_session', { json: {} }), 401, /Missing X-API-Key/)
  assertError(
    await call(base, 'POST', '/create_session', { key: 'tml-nobody', json: {} }),
    401,
    /Invalid API key/,
  )
  assertError(await call(base, 'POST', '/create_session', { key: 'sk-alice', json: {} }), 401, /tml-/)
  assert.equal((await call(base, 'GET', '/healthz')).json.status, 'ok')

  // Malformed JSON, empty bodies, schema violations.
  assertError(
    await call(base, 'POST', '/create_session', {
      key: BOB,
      body: '{"tags": [',
      headers: { 'content-type': 'application/json' },
    }),
    400,
  )
  assertError(
    await call(base, 'POST', '/create_session', {
      key: BOB,
      body: '',
      headers: { 'content-type': 'application/json' },
    }),
    400,
  )
  assertError(
    await call(base, 'POST', '/create_session', {
      key: BOB,
      body: 'x',
      headers: { 'content-type': 'text/plain' },
    }),
    415,
  )
  assertError(
    await call(base, 'POST', '/optim_step', { key: BOB, json: { model_id: 'x', adam_params: {} } }),
    400,
    /seq_id/,
  )
  assertError(await call(base, 'POST', '/create_model', { key: BOB, json: { session_id: 1 } }), 400)

  // Unknown ids.
  assertError(await call(base, 'POST', '/retrieve_future', { key: BOB, json: { request_id: 'nope' } }), 404)
  assertError(await call(base, 'POST', '/get_info', { key: BOB, json: { model_id: 's-x:train:0' } }), 404)
  assertError(await call(base, 'GET', '/samplers/s-x:sample:0', { key: BOB }), 404)
  assertError(await call(base, 'GET', '/training_runs/s-x:train:0', { key: BOB }), 404)
  assertError(
    await call(base, 'POST', '/weights_info', {
      key: BOB,
      json: { tinker_path: 'tinker://s-x:train:0/weights/a' },
    }),
    404,
  )
  assertError(
    await call(base, 'POST', '/weights_info', { key: BOB, json: { tinker_path: 'tinker://only/two' } }),
    400,
  )
  // Body-less publish (JSON content type) reaches the route: 404 for an unknown checkpoint, not a parser 400.
  assertError(
    await call(base, 'POST', '/training_runs/s-x:train:0/checkpoints/weights/a/publish', {
      key: BOB,
      headers: { 'content-type': 'application/json' },
    }),
    404,
  )
  assertError(await call(base, 'GET', '/no/such/route', { key: BOB }), 404)

  // create_model rules.
  const session = (await call(base, 'POST', '/create_session', { key: BOB, json: {} })).json.session_id
  const model = (extra: object) =>
    call(base, 'POST', '/create_model', {
      key: BOB,
      json: { session_id: session, model_seq_id: 7, base_model: MODEL, ...extra },
    })
  assertError(
    await model({ base_model: 'Qwen/Qwen9-1B', lora_config: { rank: 4 } }),
    400,
    /Unknown base model/,
  )
  assertError(await model({ lora_config: { rank: 4096 } }), 400, /exceeds/)
  assertError(
    await model({ lora_config: { rank: 4, train_attn: false, train_mlp: false, train_unembed: false } }),
    400,
    /At least one/,
  )
  assertError(await model({}), 400, /lora_config/)

  // forward_backward bodies.
  const run = await bobRun()
  const raw = (body: Uint8Array | string, headers: Record<string, string>) =>
    call(base, 'POST', '/forward_backward', { key: BOB, body, headers })
  const proto = { 'content-type': 'application/x-protobuf' }
  const good = encodeForwardBackwardRequest(ceRequest(run, 1, [1, 2, 3]))
  assertError(await raw(good.subarray(0, good.length - 3), proto), 400)
  assertError(await raw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), proto), 400)
  assertError(await raw(good, { 'content-type': 'application/json' }), 400)
  assertError(await raw(good, { 'content-type': 'application/octet-stream' }), 415)
  assertError(await raw(Buffer.from('not zstd at all'), { ...proto, 'content-encoding': 'zstd' }), 400)
  assertError(await raw(rleZstdBomb(64), { ...proto, 'content-encoding': 'zstd' }), 413)
  assertError(await raw(Buffer.alloc(BODY_LIMIT + 1), proto), 413)
  // A valid zstd body is accepted (seq 1).
  const zstd = await raw(rawZstdFrame(good), { ...proto, 'content-encoding': 'zstd' })
  assert.equal(zstd.status, 200, zstd.text)
  assert.equal((await result(base, BOB, zstd.json.request_id, 'application/x-protobuf')).status, 200)

  // Wrong dtypes, shapes, values: 400 naming the datum and key; none of it reaches the engine. A seq_id
  // refused for a user error is consumed, as the SDK assumes.
  const variant = (seqId: number, edit: (r: ReturnType<typeof ceRequest>) => void): Promise<Answer> => {
    const r = ceRequest(run, seqId, [1, 2, 3, 4])
    edit(r)
    return postFwdBwd(base, BOB, r)
  }
  const d = (r: ReturnType<typeof ceRequest>) => r.data[0]!
  assertError(
    await variant(2, (r) => {
      d(r).lossFnInputs.target_tokens = { dtype: 'float32', shape: [3], data: Float32Array.from([1, 2, 3]) }
    }),
    400,
    /must be int64/,
  )
  assertError(
    await variant(3, (r) => {
      d(r).lossFnInputs.weights = { dtype: 'int64', shape: [3], data: Int32Array.from([1, 1, 1]) }
    }),
    400,
    /must be float32/,
  )
  assertError(
    await variant(4, (r) => {
      d(r).lossFnInputs.weights = { dtype: 'float32', shape: [2], data: Float32Array.from([1, 1]) }
    }),
    400,
    /shape \[2\]/,
  )
  assertError(
    await variant(5, (r) => {
      d(r).lossFnInputs.weights!.data[1] = Number.NaN
    }),
    400,
    /non-finite/,
  )
  assertError(
    await variant(6, (r) => {
      d(r).lossFnInputs.target_tokens!.data[0] = VOCAB
    }),
    400,
    /outside the vocabulary/,
  )
  assertError(
    await variant(7, (r) => {
      d(r).lossFnInputs.mask = d(r).lossFnInputs.weights!
    }),
    400,
    /unknown key 'mask'/,
  )
  assertError(
    await variant(8, (r) => {
      delete d(r).lossFnInputs.weights
    }),
    400,
    /'weights'\] is required/,
  )
  assertError(
    await variant(9, (r) => {
      r.lossFn = 'hinge'
    }),
    400,
    /Unknown loss_fn/,
  )
  assertError(
    await variant(10, (r) => {
      d(r).chunks.push({ type: 'image', data: new Uint8Array(4), format: 'png', expectedTokens: 1 })
    }),
    400,
    /text-only/,
  )
  assertError(
    await variant(11, (r) => {
      r.modelId = 's-x:train:0'
    }),
    404,
  )
  assertError(
    await raw(encodeForwardBackwardRequest({ ...ceRequest(run, 1, [1, 2]), seqId: 0 }), proto),
    400,
    /seq_id/,
  )

  // Duplicate and out-of-order seq_ids: the duplicate returns the first future; a gap does not stall
  // later work; a seq_id arriving after a larger one ran is refused.
  const s2 = await postFwdBwd(base, BOB, ceRequest(run, 12, [1, 2, 3]))
  const dup = await postFwdBwd(base, BOB, ceRequest(run, 12, [4, 5, 6]))
  assert.equal(dup.json.request_id, s2.json.request_id)
  const s4 = await postFwdBwd(base, BOB, ceRequest(run, 14, [1, 2, 3]))
  assert.equal(s4.status, 200)
  assert.equal((await result(base, BOB, s4.json.request_id, 'application/x-protobuf')).status, 200)
  assertError(await postFwdBwd(base, BOB, ceRequest(run, 13, [1, 2, 3])), 400, /arrived after/)

  // save_weights name rules, and a duplicate name fails the future (never a 409).
  assertError(
    await call(base, 'POST', '/save_weights', { key: BOB, json: { model_id: run, seq_id: 15, path: 'a/b' } }),
    400,
  )
  const first = await call(base, 'POST', '/save_weights', {
    key: BOB,
    json: { model_id: run, seq_id: 16, path: 'same' },
  })
  assert.equal((await result(base, BOB, first.json.request_id)).json.path.endsWith('/weights/same'), true)
  const again = await call(base, 'POST', '/save_weights', {
    key: BOB,
    json: { model_id: run, seq_id: 17, path: 'same' },
  })
  const failed = await result(base, BOB, again.json.request_id)
  assert.equal(failed.status, 200)
  assert.equal(failed.json.category, 'user')
  assert.match(failed.json.error, /already exists/)
  assertError(
    await call(base, 'PUT', `/training_runs/${run}/checkpoints/weights/same/ttl`, {
      key: BOB,
      json: { ttl_seconds: 0 },
    }),
    400,
  )
  assertError(
    await call(base, 'POST', '/load_weights', {
      key: BOB,
      json: { model_id: run, seq_id: 18, path: 'file:///etc/passwd' },
    }),
    400,
  )

  // Sampling input.
  const sampler = await call(base, 'POST', '/create_sampling_session', {
    key: BOB,
    json: { session_id: session, sampling_session_seq_id: 0, base_model: MODEL },
  })
  const sample = (prompt: object, params: object = {}) =>
    call(base, 'POST', '/asample', {
      key: BOB,
      json: {
        sampling_session_id: sampler.json.sampling_session_id,
        seq_id: 1,
        num_samples: 1,
        prompt,
        sampling_params: params,
      },
    })
  assertError(await sample({ chunks: [{ type: 'image', data: 'AAAA', format: 'png' }] }), 400, /text-only/)
  assertError(await sample({ chunks: [{ tokens: [VOCAB + 5] }] }), 400, /outside the vocabulary/)
  assertError(await sample({ chunks: [] }), 400, /empty/)
  assertError(await sample({ chunks: [{ tokens: [1] }] }, { temperature: -1 }), 400)
}

test("bad input gets the spec's 4xx answers while another user keeps training", async () => {
  const [losses] = await Promise.all([healthyFlow(), badInputs()])
  assert.ok(losses.at(-1)! < losses[0]! / 2, `healthy flow learned: ${losses[0]} → ${losses.at(-1)}`)
  assert.equal((await call(base, 'GET', '/healthz')).status, 200)
})

test('sampling back-pressure: 429 with retry-after above the queue limit', async () => {
  const busy = await startTestApp({ server: { sample_queue_limit: 1 } }, { step_delay_ms: 300 })
  try {
    const url = await listen(busy.app)
    const session = (await call(url, 'POST', '/create_session', { key: BOB, json: {} })).json.session_id
    const sampler = (
      await call(url, 'POST', '/create_sampling_session', {
        key: BOB,
        json: { session_id: session, sampling_session_seq_id: 0, base_model: MODEL },
      })
    ).json.sampling_session_id
    const ask = (seq: number) =>
      call(url, 'POST', '/asample', {
        key: BOB,
        json: {
          sampling_session_id: sampler,
          seq_id: seq,
          num_samples: 1,
          prompt: { chunks: [{ tokens: [1] }] },
          sampling_params: { max_tokens: 2 },
        },
      })
    const first = await ask(1)
    assert.equal(first.status, 200)
    const second = await ask(2)
    assertError(second, 429, /Too many sampling requests/)
    assert.equal(second.headers.get('retry-after'), '1')
    // The same seq_id resubmitted is the same request, not a new one.
    assert.equal((await ask(1)).json.request_id, first.json.request_id)
    const done = await result(url, BOB, first.json.request_id, 'application/x-protobuf')
    assert.equal(done.headers.get('content-type'), 'application/x-protobuf')
    assert.equal((await ask(3)).status, 200)
  } finally {
    await busy.close()
  }
})
