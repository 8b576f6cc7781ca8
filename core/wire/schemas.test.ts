// The JSON schemas as Fastify applies them (ajv with defaults and coercion, fast-json-stringify):
// requests tolerate unknown fields and get §5.9/§5.7 defaults; responses keep exactly the spec shape.

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import Fastify from 'fastify'
import {
  ASampleRoute,
  CreateSessionRoute,
  normalizeStop,
  OptimStepRoute,
  RetrieveFutureRoute,
  SaveWeightsRoute,
  withAdamDefaults,
} from './schemas.js'

const app = Fastify()
let seen: unknown

before(async () => {
  // The shape the server's error handler gives every error (spec §1.9).
  app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
    reply.status(err.statusCode ?? 500).send({ detail: err.message })
  })
  const echo = (schema: object, reply: unknown) => ({
    schema,
    handler: async (req: { body: unknown }) => {
      seen = req.body
      return reply
    },
  })
  app.post('/optim_step', echo(OptimStepRoute, { request_id: 'r1', extra: 'dropped' }))
  app.post('/asample', echo(ASampleRoute, { request_id: 'r2', sample_sequence_ids: ['r2:0'] }))
  app.post('/save_weights', echo(SaveWeightsRoute, { request_id: 'r3' }))
  app.post(
    '/create_session',
    echo(CreateSessionRoute, { session_id: 's', type: 'create_session', secret: 'x' }),
  )
  app.post<{ Body: { request_id: string } }>('/retrieve_future', {
    schema: RetrieveFutureRoute,
    handler: async (req) =>
      req.body.request_id === 'save'
        ? { path: 'tinker://r/weights/a', type: 'save_weights' }
        : { type: 'try_again', request_id: 'r', queue_state: 'active' },
  })
  await app.ready()
})
after(() => app.close())

async function post(url: string, payload: object) {
  const res = await app.inject({ method: 'POST', url, payload })
  return { status: res.statusCode, body: res.json() }
}

describe('request schemas', () => {
  it('fills Adam defaults, ignores unknown fields and a missing type', async () => {
    const res = await post('/optim_step', {
      model_id: 'm',
      seq_id: 2,
      adam_params: { learning_rate: 0.01 },
      future: 1,
    })
    assert.equal(res.status, 200)
    assert.deepEqual(res.body, { request_id: 'r1' })
    assert.deepEqual(
      (seen as { adam_params: unknown }).adam_params,
      withAdamDefaults({ learning_rate: 0.01 }),
    )
    assert.deepEqual(withAdamDefaults(), {
      learning_rate: 1e-4,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-12,
      weight_decay: 0,
      grad_clip_norm: 0,
    })
  })

  it('rejects seq_id 0 and out-of-range Adam values', async () => {
    assert.equal((await post('/optim_step', { model_id: 'm', seq_id: 0, adam_params: {} })).status, 400)
    assert.equal(
      (await post('/optim_step', { model_id: 'm', seq_id: 1, adam_params: { beta1: 1 } })).status,
      400,
    )
  })

  it('accepts the three stop forms and fills sampling defaults', async () => {
    const base = { prompt: { chunks: [{ type: 'encoded_text', tokens: [1, 2] }] }, type: 'sample' }
    for (const stop of ['\n\n', '123', ['a', 'b'], ['7'], [151645]]) {
      const res = await post('/asample', { ...base, sampling_params: { stop } })
      assert.equal(res.status, 200, JSON.stringify(stop))
      const body = seen as { sampling_params: Record<string, unknown>; num_samples: number }
      assert.deepEqual(body.sampling_params, { stop, temperature: 1, top_k: -1, top_p: 1 })
      assert.equal(body.num_samples, 1)
    }
    const image = { type: 'image', data: 'iVBO', format: 'png', expected_tokens: 4 }
    assert.equal(
      (await post('/asample', { ...base, prompt: { chunks: [image] }, sampling_params: {} })).status,
      200,
    )
    assert.equal((await post('/asample', { ...base, sampling_params: { top_p: 0 } })).status, 400)
    assert.equal((await post('/asample', { ...base, num_samples: 0, sampling_params: {} })).status, 400)
  })

  it('takes any checkpoint name as a string (the name rules are checkCheckpointName, paths.test.ts)', async () => {
    assert.equal((await post('/save_weights', { model_id: 'm', seq_id: 3, path: 'step-1' })).status, 200)
    assert.equal((seen as { overwrite: boolean }).overwrite, false)
    assert.equal((await post('/save_weights', { model_id: 'm', seq_id: 3, path: { a: 1 } })).status, 400)
    assert.equal((await post('/save_weights', { model_id: 'm', seq_id: 3, ttl_seconds: 0 })).status, 400)
  })

  it('keeps null and zero apart (no coercion across null)', async () => {
    const prompt = { chunks: [{ tokens: [1] }] }
    assert.equal(
      (await post('/asample', { prompt, sampling_params: { seed: 0, max_tokens: null } })).status,
      200,
    )
    assert.deepEqual(seen, {
      prompt,
      sampling_params: { seed: 0, max_tokens: null, temperature: 1, top_k: -1, top_p: 1 },
      num_samples: 1,
      prompt_logprobs: false,
      topk_prompt_logprobs: 0,
    })
    assert.equal((await post('/save_weights', { model_id: 'm', seq_id: 3, ttl_seconds: null })).status, 200)
    assert.equal((seen as Record<string, unknown>).ttl_seconds, null)
  })

  it('normalizes stop into strings and token ids', () => {
    assert.deepEqual(normalizeStop('12'), { strings: ['12'], tokens: [] })
    assert.deepEqual(normalizeStop(['a', 'b']), { strings: ['a', 'b'], tokens: [] })
    assert.deepEqual(normalizeStop([7, 8]), { strings: [], tokens: [7, 8] })
    assert.deepEqual(normalizeStop(null), { strings: [], tokens: [] })
    assert.throws(() => normalizeStop(['a', 1] as string[]), /stop/)
  })
})

describe('response schemas', () => {
  it('serialize exactly the spec fields', async () => {
    assert.deepEqual((await post('/create_session', { tags: [], user_metadata: {} })).body, {
      session_id: 's',
      type: 'create_session',
    })
    assert.deepEqual((await post('/retrieve_future', { request_id: 'r' })).body, {
      type: 'try_again',
      request_id: 'r',
      queue_state: 'active',
    })
    // Results whose fields are all optional in some other result type keep every field.
    assert.deepEqual((await post('/retrieve_future', { request_id: 'save' })).body, {
      path: 'tinker://r/weights/a',
      type: 'save_weights',
    })
  })
})

describe('TypeBox Value.Check (the TS client validates answers with it)', () => {
  it('understands nullable fields, stop lists and ISO dates', async () => {
    const { Value } = await import('@sinclair/typebox/value')
    const { SaveWeightsForSamplerResult, SamplingParams, TrainingRun } = await import('./schemas.js')
    assert.equal(
      Value.Check(SaveWeightsForSamplerResult, { path: null, sampling_session_id: 's:sample:0' }),
      true,
    )
    assert.equal(Value.Check(SaveWeightsForSamplerResult, { path: 3 }), false)
    const params = { temperature: 1, top_k: -1, top_p: 1 }
    assert.equal(Value.Check(SamplingParams, { ...params, stop: [1, 2] }), true)
    assert.equal(Value.Check(SamplingParams, { ...params, stop: [{}] }), false)
    const run = {
      training_run_id: 'r',
      base_model: 'b',
      model_owner: 'u',
      is_lora: true,
      last_checkpoint: null,
    }
    assert.equal(Value.Check(TrainingRun, { ...run, last_request_time: '2026-08-20T10:11:12Z' }), true)
    assert.equal(Value.Check(TrainingRun, { ...run, last_request_time: 'yesterday' }), false)
  })
})
