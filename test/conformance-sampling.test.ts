// Conformance (spec §5.1, §5.4, §5.7, §5.8, Appendix C): the TuFT behaviours that must NOT be copied.
// A bare-string `stop` is ONE stop string; top-K prompt logprobs are computed even without
// prompt_logprobs; PPO/CISPO use the official clip defaults (0.8/1.2 and 0.0/4.0); an absent
// max_tokens gets the documented default; image chunks are refused with a clear 400. What the server
// hands the engine is recorded by wrapping the engine double.

import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { EngineProvider, SampleJob, TrainItem } from '../core/engine.js'
import { EngineRegistry } from '../core/registry.js'
import { DEFAULT_MAX_TOKENS } from '../core/services/sample-job.js'
import { buildApp } from '../plugins/app.js'
import { ALICE, MODEL, testConfig } from './helpers/app.js'
import { createBaseSampler, createRun, createSession, futureId } from './helpers/conformance.js'
import { createEngineDouble } from './helpers/engine-double.js'
import { type Answer, assertError, call, listen, result } from './helpers/http.js'
import * as sdk from './helpers/sdk-models.js'
import { rlDatum, sdkDecodeSampleResponse, sdkEncodeForwardBackwardRequest } from './helpers/sdk-proto.js'

const CONTEXT = 128

/** The engine double, with every sample job and train item the server hands it recorded. */
function recordingDouble() {
  const inner = createEngineDouble('double')
  const jobs: SampleJob[] = []
  const items: TrainItem[] = []
  const provider: EngineProvider<typeof inner.configSchema> = {
    name: inner.name,
    capabilities: inner.capabilities,
    configSchema: inner.configSchema,
    async createTraining(opts, ctx) {
      const engine = await inner.createTraining!(opts, ctx)
      const forwardBackward = engine.forwardBackward.bind(engine)
      engine.forwardBackward = (its, o) => {
        items.push(...its)
        return forwardBackward(its, o)
      }
      return engine
    },
    async createSampling(opts, ctx) {
      const engine = await inner.createSampling!(opts, ctx)
      const sample = engine.sample.bind(engine)
      engine.sample = (job, o) => {
        jobs.push(job)
        return sample(job, o)
      }
      return engine
    },
  }
  return { provider, jobs, items }
}

const recorded = recordingDouble()
let app: FastifyInstance
let dir: string
let base: string
let samplerId: string
let sessionId: string

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tuft-conformance-'))
  const registry = new EngineRegistry()
  registry.register(recorded.provider)
  app = await buildApp(await testConfig(dir), { registry, configDir: dir })
  await app.ready()
  await app.models.loadAll()
  base = await listen(app)
  sessionId = await createSession(base, ALICE)
  samplerId = await createBaseSampler(base, ALICE, sessionId)
})

after(async () => {
  await app.close()
  rmSync(dir, { recursive: true, force: true })
})

let sampleSeq = 0

/** An SDK-shaped asample body; `params` and `extra` override the SDK defaults. */
function sampleBody(params: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    num_samples: 1,
    prompt: { chunks: [{ tokens: [3, 4, 5], type: 'encoded_text' }] },
    sampling_params: { max_tokens: 2, temperature: 1, top_k: -1, top_p: 1, ...params },
    sampling_session_id: samplerId,
    seq_id: sampleSeq++,
    prompt_logprobs: false,
    topk_prompt_logprobs: 0,
    type: 'sample',
    ...extra,
  }
}

/**
 * Samples; returns the job the engine received and the SDK's view of the protobuf answer (read as
 * bytes: http.ts decodes bodies as text, which would mangle them).
 */
async function sample(params: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const before = recorded.jobs.length
  const id = futureId(await call(base, 'POST', '/asample', { key: ALICE, json: sampleBody(params, extra) }))
  for (;;) {
    const res = await fetch(`${base}/api/v1/retrieve_future`, {
      method: 'POST',
      headers: { 'x-api-key': ALICE, 'content-type': 'application/json', accept: 'application/x-protobuf' },
      body: JSON.stringify({ request_id: id, allow_metadata_only: true }),
    })
    const bytes = new Uint8Array(await res.arrayBuffer())
    if ((res.headers.get('content-type') ?? '').includes('x-protobuf')) {
      assert.equal(recorded.jobs.length, before + 1)
      return { job: recorded.jobs.at(-1)!, view: sdkDecodeSampleResponse(bytes) }
    }
    assert.equal(JSON.parse(Buffer.from(bytes).toString('utf8')).type, 'try_again')
  }
}

test('a bare-string stop is ONE stop string; lists keep their strings or token ids', async () => {
  assert.deepEqual(
    pick((await sample({ stop: 'ab\n' })).job),
    { stopStrings: ['ab\n'], stopTokens: [] },
    'not split into characters',
  )
  assert.deepEqual(pick((await sample({ stop: ['\n\n', 'User:'] })).job), {
    stopStrings: ['\n\n', 'User:'],
    stopTokens: [],
  })
  assert.deepEqual(pick((await sample({ stop: [7, 9] })).job), { stopStrings: [], stopTokens: [7, 9] })
  assert.deepEqual(pick((await sample({})).job), { stopStrings: [], stopTokens: [] })
})

const pick = (job: SampleJob) => ({ stopStrings: job.stopStrings, stopTokens: job.stopTokens })

test('top-K prompt logprobs are computed even when prompt_logprobs is false', async () => {
  const { job, view } = await sample({}, { prompt_logprobs: false, topk_prompt_logprobs: 2 })
  assert.equal(job.topkPromptLogprobs, 2)
  assert.equal(view.prompt_logprobs, null, 'prompt logprobs were not asked for')
  assert.equal(view.topk_prompt_logprobs?.length, 3, 'one row per prompt token')
  assert.equal(view.topk_prompt_logprobs?.[0], null)
  for (const row of view.topk_prompt_logprobs!.slice(1)) assert.equal(row?.length, 2)
  // And with both: prompt logprobs (NaN first → None) next to the matrix.
  const both = await sample({}, { prompt_logprobs: true, topk_prompt_logprobs: 1 })
  assert.equal(both.view.prompt_logprobs?.[0], null)
  assert.equal(both.view.prompt_logprobs?.length, 3)
  assert.equal(both.view.topk_prompt_logprobs?.[1]?.length, 1)
})

test('a poll without protobuf in Accept (SDK <= 0.24) gets the Appendix A JSON sample, top-K included', async () => {
  const id = futureId(
    await call(base, 'POST', '/asample', {
      key: ALICE,
      json: sampleBody({}, { prompt_logprobs: true, topk_prompt_logprobs: 2 }),
    }),
  )
  const a = await result(base, ALICE, id, 'application/json')
  assert.match(a.headers.get('content-type') ?? '', /json/)
  const body = a.json
  assert.equal(body.type, 'sample')
  assert.equal(body.sequences.length, 1)
  assert.ok(['stop', 'length'].includes(body.sequences[0].stop_reason))
  assert.equal(body.sequences[0].logprobs.length, body.sequences[0].tokens.length)
  assert.equal(body.prompt_logprobs.length, 3)
  assert.equal(body.prompt_logprobs[0], null)
  assert.equal(body.topk_prompt_logprobs.length, 3)
  assert.equal(body.topk_prompt_logprobs[0], null)
  for (const row of body.topk_prompt_logprobs.slice(1)) {
    assert.equal(row.length, 2)
    for (const [token, logprob] of row) assert.ok(Number.isInteger(token) && logprob <= 0)
  }
})

test('an absent max_tokens gets the documented default, bounded by the context', async () => {
  const { job, view } = await sample({ max_tokens: undefined })
  assert.equal(job.maxTokens, Math.min(DEFAULT_MAX_TOKENS, CONTEXT - 3))
  assert.ok(view.sequences[0]!.tokens.length <= job.maxTokens)
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  assert.ok(
    readme.includes('max_tokens') && readme.includes(String(DEFAULT_MAX_TOKENS)),
    'README documents the default max_tokens',
  )
  // Every sequence carries one logprob per generated token (RL code asserts they are present).
  for (const s of view.sequences) assert.equal(s.logprobs?.length ?? 0, s.tokens.length)
})

test('image chunks are refused with a clear 400, in asample and in forward_backward', async () => {
  const image = {
    type: 'image',
    data: Buffer.from('png').toString('base64'),
    format: 'png',
    expected_tokens: 2,
  }
  const pointer = { type: 'image_asset_pointer', location: 'https://example.com/x.png', format: 'png' }
  for (const chunk of [image, pointer]) {
    const body = sampleBody({}, { prompt: { chunks: [chunk, { tokens: [1, 2], type: 'encoded_text' }] } })
    const a: Answer = await call(base, 'POST', '/asample', { key: ALICE, json: body })
    assertError(a, 400, new RegExp(`${chunk.type}.*not supported`))
  }
  const { modelId } = await createRun(base, ALICE)
  const withImage = rlDatum([1, 2, 3], -1, 1)
  withImage.image = { data: Uint8Array.from([137, 80, 78, 71]), format: 'png', expectedTokens: 2 }
  const bytes = sdkEncodeForwardBackwardRequest({
    model_id: modelId,
    seq_id: 1,
    loss_fn: 'importance_sampling',
    forward_only: false,
    data: [withImage],
  })
  const a = await call(base, 'POST', '/forward_backward', {
    key: ALICE,
    body: bytes,
    headers: { 'content-type': 'application/x-protobuf' },
  })
  assertError(a, 400, /image chunks are not supported/)
})

test('PPO and CISPO use the official clip defaults; loss_fn_config overrides them', async () => {
  const { modelId } = await createRun(base, ALICE)
  let seq = 0
  const run = async (lossFn: string, config: Record<string, number> = {}) => {
    const before = recorded.items.length
    const bytes = sdkEncodeForwardBackwardRequest({
      model_id: modelId,
      seq_id: ++seq,
      loss_fn: lossFn,
      loss_fn_config: config,
      forward_only: true,
      data: [rlDatum([1, 2, 3], -1, 1)],
    })
    const id = futureId(
      await call(base, 'POST', '/forward_backward', {
        key: ALICE,
        body: bytes,
        headers: { 'content-type': 'application/x-protobuf' },
      }),
    )
    await result(base, ALICE, id, 'application/x-protobuf')
    assert.equal(recorded.items.length, before + 1)
    return recorded.items.at(-1)!.lossConfig
  }
  assert.deepEqual(await run('ppo'), { clip_low_threshold: 0.8, clip_high_threshold: 1.2 })
  assert.deepEqual(await run('cispo'), { clip_low_threshold: 0, clip_high_threshold: 4 })
  assert.deepEqual(await run('ppo', { clip_low_threshold: 0.7 }), {
    clip_low_threshold: 0.7,
    clip_high_threshold: 1.2,
  })
  assert.deepEqual(await run('importance_sampling'), {})
})

test('sampler lookups answer with SDK-valid shapes', async () => {
  const a = await call(base, 'GET', `/samplers/${samplerId}`, { key: ALICE })
  sdk.assertModel(sdk.SamplerResponse, a.json, 'GetSamplerResponse')
  assert.deepEqual([a.json.base_model, a.json.model_path ?? null], [MODEL, null])
})
