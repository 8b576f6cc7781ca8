// Conformance: replays every request of the SDK 0.25.0 transcript (spec/fixtures) against the
// real app over loopback HTTP, in order, with the SDK's method, URL shape, headers (Content-Type on
// body-less POST/DELETE, Accept, X-Tinker-Request-Type …) and bodies, and checks every answer the way
// SDK 0.25 would: its pydantic models (test/helpers/sdk-models.ts) and its protobuf decoding
// (test/helpers/sdk-proto.ts), both written from the spec rather than from the server's own schemas.
//
// The transcript keeps one request per endpoint, so the requests the probe run sent but did not keep
// (forward-only, PPO, the TTL save, save_weights_and_get_sampling_client, the second create_model,
// heartbeat, telemetry) are synthesized in the same SDK form where the run sent them. Ids of the probe
// server (sess-1, sess-1:train:0, request ids …) are rewritten to the ones this server returned.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { after, before, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { ALICE, MODEL, startTestApp, type TestApp } from './helpers/app.js'
import * as sdk from './helpers/sdk-models.js'
import {
  ceDatum,
  rlDatum,
  type SdkDatum,
  sdkDecodeForwardBackwardOutput,
  sdkDecodeSampleResponse,
  sdkEncodeForwardBackwardRequest,
} from './helpers/sdk-proto.js'

interface TranscriptRequest {
  method: string
  url: string
  headers: Record<string, string>
  body: unknown
}

const TRANSCRIPT = JSON.parse(
  readFileSync(new URL('../spec/fixtures/sdk-0.25.0-request-transcript.json', import.meta.url), 'utf8'),
) as { requests: TranscriptRequest[] }

const PROBE_MODEL = 'Qwen/Qwen3-0.6B'

interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

let t: TestApp
let port: number

before(async () => {
  t = await startTestApp()
  await t.app.listen({ host: '127.0.0.1', port: 0 })
  port = (t.app.server.address() as { port: number }).port
})

after(() => t.close())

/** One raw HTTP/1.1 exchange: exactly these headers, no redirects followed, no headers added by a library. */
function send(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: url, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
      )
    })
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * Python's json.dumps writes float fields as `0.0`/`1.0`; the transcript's Content-Length values were
 * measured on that. Re-creating it byte for byte keeps the replay honest (checked against the
 * recorded Content-Length before ids are rewritten).
 */
const FLOAT_FIELDS = [
  'learning_rate',
  'beta1',
  'beta2',
  'eps',
  'weight_decay',
  'grad_clip_norm',
  'temperature',
  'top_p',
]
function pythonJson(body: unknown): string {
  const re = new RegExp(`"(${FLOAT_FIELDS.join('|')})":(-?\\d+)(?=[,}])`, 'g')
  return JSON.stringify(body).replace(re, '"$1":$2.0')
}

/** Bodies the probe did not keep but whose Content-Length it did (both are JSON the SDK always sends). */
function reconstructBody(r: TranscriptRequest): unknown {
  if (r.url === '/api/v1/client/dynamic_config') return { sdk_version: '0.25.0' }
  if (r.url === '/api/v1/get_info') return { model_id: 'sess-1:train:0', type: 'get_info' }
  const body = r.body as { json?: unknown } | null
  return body && typeof body === 'object' && 'json' in body ? body.json : body
}

/** Probe id → our id; applied longest first so `sess-1:train:0` wins over `sess-1`. */
const ids = new Map<string, string>()
function rewrite(s: string): string {
  let out = s
  for (const probe of [...ids.keys()].sort((a, b) => b.length - a.length))
    out = out.split(probe).join(ids.get(probe)!)
  return out.split(PROBE_MODEL).join(MODEL)
}

/** SDK headers for a synthesized request, modelled on a transcript request of the same family. */
function sdkHeaders(like: TranscriptRequest, extra: Record<string, string> = {}): Record<string, string> {
  const h = { ...like.headers, ...extra }
  delete h['content-length']
  delete h['x-tinker-create-promise-roundtrip-time']
  h['x-idempotency-key'] = `stainless-python-retry-${crypto.randomUUID()}`
  return h
}

function prepareHeaders(h: Record<string, string>, body: Uint8Array | undefined): Record<string, string> {
  const out: Record<string, string> = { ...h, 'x-api-key': ALICE }
  delete out['content-length']
  // The SDK sends Content-Length on every request with a body and on the body-less POST (0); the
  // body-less DELETE carries only the JSON Content-Type (spec §1.5).
  if (body !== undefined) out['content-length'] = String(body.byteLength)
  return out
}

const json = (r: Reply) => JSON.parse(r.body.toString('utf8')) as Record<string, unknown>

function assertJsonReply(r: Reply, what: string): Record<string, unknown> {
  assert.ok(r.status >= 200 && r.status < 300, `${what}: expected 2xx, got ${r.status} ${r.body}`)
  assert.match(String(r.headers['content-type']), /json/, `${what}: JSON media type`)
  return json(r)
}

// ---- future bookkeeping: probe request ids are mapped through X-Tinker-Request-Type ----

const submitted = new Map<string, string>()

async function submit(
  method: string,
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
  requestType: string,
): Promise<string> {
  const r = await send(method, url, prepareHeaders(headers, body), body)
  const f = assertJsonReply(r, url)
  sdk.assertModel(sdk.UntypedAPIFuture, f, `${url} UntypedAPIFuture`)
  submitted.set(requestType, f.request_id as string)
  return f.request_id as string
}

/** The result types SDK 0.25 asks for (and only accepts) as protobuf (spec §4.4). */
const PROTOBUF_RESULTS = ['ForwardBackward', 'Forward', 'Sample']

/** Polls like the SDK: iteration counter, Accept per result type, try_again answers polled again. */
async function retrieve(like: TranscriptRequest, requestType: string): Promise<Reply> {
  const requestId = submitted.get(requestType)
  assert.ok(requestId, `a ${requestType} future was submitted before it is polled`)
  const accept = PROTOBUF_RESULTS.includes(requestType) ? 'application/x-protobuf' : 'application/json'
  if (like.headers['x-tinker-request-type'] === requestType) assert.equal(like.headers.accept, accept)
  for (let iteration = 0; ; iteration++) {
    const headers = sdkHeaders(like, {
      accept,
      'x-tinker-request-type': requestType,
      'x-tinker-request-iteration': String(iteration),
    })
    const body = Buffer.from(JSON.stringify({ request_id: requestId, allow_metadata_only: iteration === 0 }))
    const started = Date.now()
    const r = await send('POST', '/api/v1/retrieve_future', prepareHeaders(headers, body), body)
    assert.equal(r.status, 200, `retrieve_future ${requestType}: ${r.body}`)
    assert.ok(Date.now() - started < 45_000, 'a poll is answered within the SDK 45 s timeout')
    if (!String(r.headers['content-type']).includes('json')) return r
    const answer = json(r)
    if (answer.type !== 'try_again') return r
    sdk.assertModel(sdk.TryAgain, answer, 'TryAgainResponse')
  }
}

function assertProtobufReply(r: Reply, what: string): void {
  assert.equal(r.status, 200)
  assert.match(
    String(r.headers['content-type']),
    /^application\/x-protobuf/,
    `${what}: protobuf media type (got ${r.body.toString('utf8').slice(0, 300)})`,
  )
}

function assertJsonResult(r: Reply, check: sdk.Check, what: string): Record<string, unknown> {
  const body = assertJsonReply(r, what)
  assert.ok(!('error' in body), `${what} succeeded: ${JSON.stringify(body)}`)
  assert.notEqual(body.status, 'complete_metadata')
  sdk.assertModel(check, body, what)
  return body
}

// ---- the synthesized protobuf bodies ----

/** The transcript's chunk: three datums with 4, 6 and 2 target tokens (from the decoded summary). */
const CE_DATA: SdkDatum[] = [
  ceDatum([1, 2, 3, 4, 5]),
  ceDatum([3, 4, 5, 6, 7, 8, 9]),
  ceDatum([7, 8, 9]),
].map((d) => ({
  tokens: d.tokens,
  inputs: { weights: d.inputs.weights!, target_tokens: d.inputs.target_tokens! },
}))

function fwdbwdBody(
  modelId: string,
  seqId: number,
  lossFn: string,
  forwardOnly: boolean,
  data: SdkDatum[],
  cfg = {},
) {
  return sdkEncodeForwardBackwardRequest({
    model_id: modelId,
    seq_id: seqId,
    loss_fn: lossFn,
    loss_fn_config: cfg,
    forward_only: forwardOnly,
    data,
  })
}

function assertFwdBwdResult(r: Reply, data: SdkDatum[], what: string): void {
  assertProtobufReply(r, what)
  const out = sdkDecodeForwardBackwardOutput(r.body)
  assert.equal(out.loss_fn_outputs.length, data.length, `${what}: one loss_fn_outputs entry per datum`)
  out.loss_fn_outputs.forEach((o, i) => {
    const target = data[i]!.inputs.target_tokens!
    assert.equal(o.logprobs?.dtype, 'float32', `${what}: datum ${i} has float32 logprobs`)
    assert.deepEqual(
      o.logprobs?.shape,
      target.shape,
      `${what}: datum ${i} logprobs shaped like target_tokens`,
    )
    assert.ok(o.logprobs!.data.every((v) => Number.isFinite(v) && v <= 0))
  })
  sdk.assertMetricKeys(out.metrics, what)
  assert.ok(Number.isFinite(out.metrics['loss:sum']), `${what}: loss:sum is reported`)
}

/** Names of the regular files in a .tar.gz, read from the 512-byte ustar headers. */
function tarNames(gz: Buffer): string[] {
  const tar = gunzipSync(gz)
  const names: string[] = []
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512)
    if (header.every((b) => b === 0)) break
    const field = (from: number, len: number) =>
      header
        .subarray(from, from + len)
        .toString('utf8')
        .replace(/\0.*$/s, '')
    const size = Number.parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1)
    if (type === '0' || type === '')
      names.push(`${field(345, 155) ? `${field(345, 155)}/` : ''}${field(0, 100)}`)
    at += 512 + Math.ceil(size / 512) * 512
  }
  return names
}

test("the replay's SDK-side decoders reproduce what the real SDK made of the recorded results", () => {
  const fixture = (name: string, ext: string) =>
    readFileSync(new URL(`../spec/fixtures/${name}.${ext}`, import.meta.url))
  const view = (name: string) => JSON.parse(fixture(name, 'json').toString('utf8')).sdk_view
  assert.deepEqual(sdkDecodeSampleResponse(fixture('sample_response', 'bin')), view('sample_response'))
  for (const name of ['fwdbwd_output_1d', 'fwdbwd_output_2d_topk'])
    assert.deepEqual(sdkDecodeForwardBackwardOutput(fixture(name, 'bin')), view(name))
})

test('the SDK 0.25.0 transcript replays request by request with answers SDK 0.25 accepts', async () => {
  const reqs = TRANSCRIPT.requests
  const like = (url: string) => reqs.find((r) => r.url === url)!
  const poll = like('/api/v1/retrieve_future')
  let replayed = 0

  /** Sends transcript request `i` as recorded (ids rewritten) and returns the answer. */
  const replay = async (i: number): Promise<Reply> => {
    const r = reqs[i]!
    replayed++
    const body = reconstructBody(r)
    let bytes: Uint8Array | undefined
    if (body !== null && body !== undefined) {
      const text = pythonJson(body)
      assert.equal(
        Buffer.byteLength(text),
        Number(r.headers['content-length']),
        `request ${i} (${r.url}) is rebuilt byte for byte`,
      )
      bytes = Buffer.from(rewrite(text))
    } else if (r.headers['content-length'] === '0') {
      bytes = new Uint8Array(0)
    }
    return send(r.method, rewrite(r.url), prepareHeaders(r.headers, bytes), bytes)
  }

  // #0 client/config: the flags the server relies on (no JWT, no pyqwest, no create-via-load).
  const config = assertJsonReply(await replay(0), 'client/config')
  sdk.assertModel(sdk.ClientConfig, config, 'ClientConfig')
  assert.equal(config.pjwt_auth_enabled, false)
  assert.equal(config.use_pyqwest_transport, false)
  assert.equal(config.create_model_via_load_weights ?? false, false)
  assert.equal(config.parallel_fwdbwd_chunks, false, 'chunks are submitted in order')

  // #1 dynamic_config: 404 is allowed, otherwise a valid DynamicConfig.
  const dyn = await replay(1)
  if (dyn.status !== 404)
    sdk.assertModel(sdk.DynamicConfig, assertJsonReply(dyn, 'dynamic_config'), 'DynamicConfig')

  // #2 capabilities.
  const caps = assertJsonReply(await replay(2), 'get_server_capabilities')
  sdk.assertModel(sdk.ServerCapabilities, caps, 'GetServerCapabilitiesResponse')
  assert.ok((caps.supported_models as { model_name: string }[]).some((m) => m.model_name === MODEL))

  // #3 create_session.
  const session = assertJsonReply(await replay(3), 'create_session')
  sdk.assertModel(sdk.CreateSessionResponse, session, 'CreateSessionResponse')
  assert.match(session.session_id as string, /^[A-Za-z0-9._~:-]+$/, 'session ids are URL-path safe')
  ids.set('sess-1', session.session_id as string)

  // Heartbeat and telemetry (spec §3.5, §3.6 bodies; not kept in the transcript).
  const hb = Buffer.from(JSON.stringify({ session_id: ids.get('sess-1'), type: 'session_heartbeat' }))
  const hbReply = await send(
    'POST',
    '/api/v1/session_heartbeat',
    prepareHeaders(sdkHeaders(like('/api/v1/create_session'), { 'x-stainless-read-timeout': '10' }), hb),
    hb,
  )
  sdk.assertModel(sdk.SessionHeartbeatResponse, assertJsonReply(hbReply, 'session_heartbeat'), 'heartbeat')
  const telemetry = Buffer.from(
    JSON.stringify({
      events: [
        {
          event: 'SESSION_START',
          event_id: crypto.randomUUID(),
          event_session_index: 0,
          severity: 'INFO',
          timestamp: new Date().toISOString(),
        },
      ],
      platform: 'Linux',
      sdk_version: '0.25.0',
      session_id: ids.get('sess-1'),
      process_uuid: crypto.randomUUID(),
    }),
  )
  const telReply = await send(
    'POST',
    '/api/v1/telemetry',
    prepareHeaders(
      sdkHeaders(like('/api/v1/create_session'), { 'x-stainless-read-timeout': '5' }),
      telemetry,
    ),
    telemetry,
  )
  assert.deepEqual(assertJsonReply(telReply, 'telemetry'), { status: 'accepted' })

  // #4 create_model → #5 its future.
  const cm = assertJsonReply(await replay(4), 'create_model')
  sdk.assertModel(sdk.UntypedAPIFuture, cm, 'create_model UntypedAPIFuture')
  submitted.set('CreateModel', cm.request_id as string)
  const created = assertJsonResult(
    await retrieve(reqs[5]!, 'CreateModel'),
    sdk.CreateModelResult,
    'CreateModelResponse',
  )
  const model0 = created.model_id as string
  assert.ok(!model0.includes('/'), 'model ids never contain /')
  ids.set('sess-1:train:0', model0)
  replayed++

  // #6 get_info (feeds the SDK's tokenizer loading).
  const info = assertJsonReply(await replay(6), 'get_info')
  sdk.assertModel(sdk.GetInfoResponse, info, 'GetInfoResponse')
  assert.equal(info.model_id, model0)

  // #7 forward_backward (protobuf, seq 1) and #8 optim_step (seq 2); #9, #10 their futures.
  const fwdbwd = reqs[7]!
  const summary = (
    fwdbwd.body as { protobuf_decoded_summary: { n: number; shapes: Record<string, [number, number[]]>[] } }
  ).protobuf_decoded_summary
  assert.equal(summary.n, CE_DATA.length)
  summary.shapes.forEach((s, i) => {
    assert.deepEqual(CE_DATA[i]!.inputs.target_tokens!.shape, s.target_tokens![1])
    assert.deepEqual(CE_DATA[i]!.inputs.weights!.shape, s.weights![1])
  })
  replayed++
  await submit(
    'POST',
    '/api/v1/forward_backward',
    sdkHeaders(fwdbwd),
    fwdbwdBody(model0, 1, 'cross_entropy', false, CE_DATA),
    'ForwardBackward',
  )
  const optim = await replay(8)
  submitted.set('OptimStep', assertJsonReply(optim, 'optim_step').request_id as string)
  assertFwdBwdResult(await retrieve(reqs[9]!, 'ForwardBackward'), CE_DATA, 'ForwardBackwardOutput')
  replayed++
  const optimResult = assertJsonResult(
    await retrieve(reqs[10]!, 'OptimStep'),
    sdk.OptimStepResult,
    'OptimStepResponse',
  )
  for (const key of Object.keys((optimResult.metrics as object) ?? {}))
    assert.equal(key.split(':').length, 2, key)
  replayed++

  // Forward-only (seq 3) → #11 its future; then PPO (seq 4) with the official config keys.
  await submit(
    'POST',
    '/api/v1/forward_backward',
    sdkHeaders(fwdbwd),
    fwdbwdBody(model0, 3, 'cross_entropy', true, CE_DATA),
    'Forward',
  )
  assertFwdBwdResult(await retrieve(reqs[11]!, 'Forward'), CE_DATA, 'ForwardBackwardOutput (forward only)')
  replayed++
  const ppoData = [rlDatum([1, 2, 3, 4], -2, 1), rlDatum([5, 6, 7], -1.5, -0.5)]
  await submit(
    'POST',
    '/api/v1/forward_backward',
    sdkHeaders(fwdbwd),
    fwdbwdBody(model0, 4, 'ppo', false, ppoData, { clip_low_threshold: 0.8, clip_high_threshold: 1.2 }),
    'ForwardBackward',
  )
  assertFwdBwdResult(await retrieve(poll, 'ForwardBackward'), ppoData, 'ForwardBackwardOutput (ppo)')

  // #12 save_state (seq 5) → #13; then a save_state with a TTL (seq 6).
  submitted.set('SaveWeights', assertJsonReply(await replay(12), 'save_weights').request_id as string)
  const saved = assertJsonResult(
    await retrieve(reqs[13]!, 'SaveWeights'),
    sdk.SaveWeightsResult,
    'SaveWeightsResponse',
  )
  assert.equal(saved.path, `tinker://${model0}/weights/s1`)
  replayed++
  const ttlSave = Buffer.from(
    pythonJson({
      model_id: model0,
      path: 's2',
      seq_id: 6,
      ttl_seconds: 3600,
      overwrite: false,
      type: 'save_weights',
    }),
  )
  await submit('POST', '/api/v1/save_weights', sdkHeaders(reqs[12]!), ttlSave, 'SaveWeights')
  assertJsonResult(await retrieve(poll, 'SaveWeights'), sdk.SaveWeightsResult, 'SaveWeightsResponse (ttl)')

  // #14 named save_weights_for_sampler (seq 7) → #15.
  submitted.set(
    'SaveWeightsForSampler',
    assertJsonReply(await replay(14), 'save_weights_for_sampler').request_id as string,
  )
  const named = assertJsonResult(
    await retrieve(reqs[15]!, 'SaveWeightsForSampler'),
    sdk.SaveWeightsForSamplerResult,
    'SaveWeightsForSamplerResponse',
  )
  assert.equal(named.path, `tinker://${model0}/sampler_weights/w1`, 'named saves return a non-null path')
  replayed++

  // save_weights_and_get_sampling_client (seq 8, sampling_session_seq_id 0): the sampler #16 uses.
  const ephemeral = Buffer.from(
    JSON.stringify({
      model_id: model0,
      seq_id: 8,
      sampling_session_seq_id: 0,
      type: 'save_weights_for_sampler',
    }),
  )
  await submit(
    'POST',
    '/api/v1/save_weights_for_sampler',
    sdkHeaders(reqs[14]!),
    ephemeral,
    'SaveWeightsForSampler',
  )
  const snap = assertJsonResult(
    await retrieve(poll, 'SaveWeightsForSampler'),
    sdk.SaveWeightsForSamplerResult,
    'SaveWeightsForSamplerResponse (ephemeral)',
  )
  assert.equal(typeof snap.sampling_session_id, 'string', 'unnamed saves return a sampling_session_id')
  ids.set('sess-1:sample:0', snap.sampling_session_id as string)

  // #16 asample (prompt + top-2 prompt logprobs) → #17 protobuf SampleResponse.
  submitted.set('Sample', assertJsonReply(await replay(16), 'asample').request_id as string)
  const sampleReply = await retrieve(reqs[17]!, 'Sample')
  assertProtobufReply(sampleReply, 'SampleResponse')
  const sample = sdkDecodeSampleResponse(sampleReply.body)
  assert.equal(sample.sequences.length, 2, 'num_samples sequences')
  for (const s of sample.sequences) {
    assert.ok(s.tokens.length >= 1 && s.tokens.length <= 3, 'at most max_tokens tokens')
    assert.equal(s.logprobs?.length, s.tokens.length, 'one logprob per generated token, always sent')
    if (s.tokens.length < 3) assert.equal(s.stop_reason, 'stop')
  }
  assert.equal(sample.prompt_logprobs?.length, 3)
  assert.equal(sample.prompt_logprobs?.[0], null, 'the first prompt position has no logprob')
  assert.equal(sample.topk_prompt_logprobs?.length, 3)
  assert.equal(sample.topk_prompt_logprobs?.[0], null)
  for (const row of sample.topk_prompt_logprobs!.slice(1)) {
    assert.equal(row?.length, 2, 'top-2 alternatives per prompt position')
    assert.ok(row![0]![1] >= row![1]![1], 'best first')
  }
  replayed++

  // #18 GET samplers/<id>.
  const sampler = assertJsonReply(await replay(18), 'samplers')
  sdk.assertModel(sdk.SamplerResponse, sampler, 'GetSamplerResponse')
  assert.equal(sampler.base_model, MODEL)

  // #19 create_sampling_session on the base model.
  const css = assertJsonReply(await replay(19), 'create_sampling_session')
  sdk.assertModel(sdk.CreateSamplingSessionResponse, css, 'CreateSamplingSessionResponse')
  ids.set('sess-1:sample:1', css.sampling_session_id as string)

  // #20-#23 REST listings.
  const runs = assertJsonReply(await replay(20), 'training_runs')
  sdk.assertModel(sdk.TrainingRunsResponse, runs, 'TrainingRunsResponse')
  const run = assertJsonReply(await replay(21), 'training_runs/<id>')
  sdk.assertModel(sdk.TrainingRun, run, 'TrainingRun')
  assert.deepEqual(run.user_metadata, { a: 'b' }, 'creation-time user_metadata echoed as strings')
  const runCkpts = assertJsonReply(await replay(22), 'training_runs/<id>/checkpoints')
  sdk.assertModel(sdk.CheckpointsResponse, runCkpts, 'CheckpointsListResponse')
  const list = runCkpts.checkpoints as {
    checkpoint_id: string
    checkpoint_type: string
    expires_at: string | null
  }[]
  assert.deepEqual(list.map((c) => c.checkpoint_id).sort(), [
    'sampler_weights/w1',
    'weights/s1',
    'weights/s2',
  ])
  for (const c of list)
    assert.equal(c.checkpoint_type, c.checkpoint_id.startsWith('weights/') ? 'training' : 'sampler')
  assert.ok(list.find((c) => c.checkpoint_id === 'weights/s2')?.expires_at, 'ttl_seconds sets expires_at')
  assert.equal(list.find((c) => c.checkpoint_id === 'weights/s1')?.expires_at, null)
  const mine = assertJsonReply(await replay(23), 'checkpoints')
  sdk.assertModel(sdk.CheckpointsResponse, mine, 'CheckpointsListResponse (user)')
  sdk.assertModel(sdk.Cursor, mine.cursor, 'Cursor')

  // #24-#28 publish, unpublish, TTL, archive, delete of sampler_weights/w1 (wildcard tails).
  for (const i of [24, 25, 26]) {
    const r = await replay(i)
    assert.ok(
      r.status === 200 || r.status === 204,
      `${reqs[i]!.method} ${reqs[i]!.url}: ${r.status} ${r.body}`,
    )
  }
  const archive = await replay(27)
  assert.equal(archive.status, 302, 'archive answers with a redirect the SDK does not follow')
  const location = String(archive.headers.location)
  assert.match(location, /^https?:\/\//, 'Location is an absolute URL')
  if (archive.headers.expires) assert.ok(!Number.isNaN(Date.parse(String(archive.headers.expires))))
  const download = await fetch(location) // a plain GET without any Tinker header
  assert.equal(download.status, 200)
  assert.deepEqual(tarNames(Buffer.from(await download.arrayBuffer())).sort(), [
    'adapter_config.json',
    'adapter_model.safetensors',
  ])
  const del = await replay(28)
  assert.ok(del.status === 200 || del.status === 204, `delete: ${del.status} ${del.body}`)

  // #29, #30 sessions.
  const sessions = assertJsonReply(await replay(29), 'sessions')
  sdk.assertModel(sdk.SessionsResponse, sessions, 'ListSessionsResponse')
  assert.ok((sessions.sessions as string[]).includes(ids.get('sess-1')!))
  const sess = assertJsonReply(await replay(30), 'sessions/<id>')
  sdk.assertModel(sdk.SessionResponse, sess, 'GetSessionResponse')
  assert.deepEqual(sess.training_run_ids, [model0])
  assert.deepEqual(sess.sampler_ids, [ids.get('sess-1:sample:0'), ids.get('sess-1:sample:1')])

  // #31 weights_info, then create_model for the resumed run (model_seq_id 1) with the returned config.
  const wi = assertJsonReply(await replay(31), 'weights_info')
  sdk.assertModel(sdk.WeightsInfoResponse, wi, 'WeightsInfoResponse')
  assert.deepEqual([wi.base_model, wi.lora_rank, wi.train_unembed], [MODEL, 8, false])
  const cm1 = Buffer.from(
    JSON.stringify({
      session_id: ids.get('sess-1'),
      model_seq_id: 1,
      base_model: wi.base_model,
      lora_config: {
        rank: wi.lora_rank,
        train_unembed: wi.train_unembed,
        train_mlp: wi.train_mlp,
        train_attn: wi.train_attn,
      },
      type: 'create_model',
    }),
  )
  await submit('POST', '/api/v1/create_model', sdkHeaders(reqs[4]!), cm1, 'CreateModel')
  const created1 = assertJsonResult(
    await retrieve(poll, 'CreateModel'),
    sdk.CreateModelResult,
    'CreateModelResponse (1)',
  )
  ids.set('sess-1:train:1', created1.model_id as string)

  // #32 load_weights (seq 1 of the new run) → #33.
  submitted.set('LoadWeights', assertJsonReply(await replay(32), 'load_weights').request_id as string)
  const loaded = assertJsonResult(
    await retrieve(reqs[33]!, 'LoadWeights'),
    sdk.LoadWeightsResult,
    'LoadWeightsResponse',
  )
  assert.equal(loaded.path, `tinker://${model0}/weights/s1`)
  replayed++

  assert.equal(replayed, reqs.length, 'every transcript request was replayed')
})
