// Shared steps of the conformance suites (test/conformance-*.test.ts): SDK-shaped JSON bodies for the
// calls every scenario starts with, and a single retrieve_future poll (the SDK's own, with no retry).

import assert from 'node:assert/strict'
import { MODEL } from './app.js'
import { type Answer, call, result } from './http.js'
import * as sdk from './sdk-models.js'

export async function createSession(base: string, key: string): Promise<string> {
  const a = await call(base, 'POST', '/create_session', {
    key,
    json: { tags: [], user_metadata: {}, sdk_version: '0.25.0', type: 'create_session' },
  })
  assert.equal(a.status, 200, a.text)
  return a.json.session_id
}

/** A sampling session on the base model, as the SDK creates one; its sampling_session_id. */
export async function createBaseSampler(
  base: string,
  key: string,
  sessionId: string,
  seqId = 0,
): Promise<string> {
  const a = await call(base, 'POST', '/create_sampling_session', {
    key,
    json: {
      session_id: sessionId,
      sampling_session_seq_id: seqId,
      base_model: MODEL,
      type: 'create_sampling_session',
    },
  })
  assert.equal(a.status, 200, a.text)
  return a.json.sampling_session_id
}

export function createModelBody(sessionId: string, modelSeqId = 0, rank = 4): Record<string, unknown> {
  return {
    session_id: sessionId,
    model_seq_id: modelSeqId,
    base_model: MODEL,
    lora_config: { rank, train_unembed: true, train_mlp: true, train_attn: true },
    type: 'create_model',
  }
}

/** A session and a ready training run in it. */
export async function createRun(base: string, key: string): Promise<{ sessionId: string; modelId: string }> {
  const sessionId = await createSession(base, key)
  const f = await call(base, 'POST', '/create_model', { key, json: createModelBody(sessionId) })
  assert.equal(f.status, 200, f.text)
  const r = await result(base, key, f.json.request_id)
  sdk.assertModel(sdk.CreateModelResult, r.json, 'CreateModelResponse')
  return { sessionId, modelId: r.json.model_id }
}

/** One poll, as the SDK sends it (the server may hold it for its long-poll period). */
export function pollOnce(
  base: string,
  key: string,
  requestId: string,
  accept = 'application/json',
): Promise<Answer> {
  return call(base, 'POST', '/retrieve_future', {
    key,
    json: { request_id: requestId, allow_metadata_only: true },
    headers: { accept },
  })
}

/** A submission's request_id (asserting the SDK's UntypedAPIFuture shape). */
export function futureId(a: Answer): string {
  assert.equal(a.status, 200, `submission accepted: ${a.status} ${a.text}`)
  sdk.assertModel(sdk.UntypedAPIFuture, a.json, 'UntypedAPIFuture')
  return a.json.request_id
}

/** A failed future as the SDK must see it: HTTP 200 with exactly {"error", "category"} (spec §4.3). */
export function assertFailedFuture(a: Answer, category: 'user' | 'server', message?: RegExp): void {
  assert.equal(a.status, 200, `failures are reported with 200, got ${a.status}: ${a.text}`)
  sdk.assertModel(sdk.FutureFailure, a.json, 'RequestFailedResponse')
  assert.equal(a.json.category, category, a.text)
  assert.ok(a.json.error.length > 0, 'the failure names its reason')
  if (message) assert.match(a.json.error, message)
}

/** Writes a checkpoint through save_weights (or the named save_weights_for_sampler) and waits for it. */
export async function saveCheckpoint(
  base: string,
  key: string,
  modelId: string,
  seqId: number,
  name: string,
  kind: 'weights' | 'sampler_weights' = 'weights',
  ttlSeconds?: number,
): Promise<string> {
  const endpoint = kind === 'weights' ? '/save_weights' : '/save_weights_for_sampler'
  const json = {
    model_id: modelId,
    path: name,
    seq_id: seqId,
    ...(ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds }),
    ...(kind === 'weights' ? { overwrite: false } : {}),
    type: kind === 'weights' ? 'save_weights' : 'save_weights_for_sampler',
  }
  const r = await result(base, key, futureId(await call(base, 'POST', endpoint, { key, json })))
  assert.equal(r.json.path, `tinker://${modelId}/${kind}/${name}`, r.text)
  return r.json.path
}
