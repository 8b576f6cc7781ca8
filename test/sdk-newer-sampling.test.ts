// SDK ≥ 0.26 sampling (README compatibility table, "sample / compute_logprobs"): every asample future
// carries one unique id per requested sample, a de-duplicated resubmission answers the same ids, and
// the protobuf result holds exactly as many sequences, so the SDK's `_attach_sequence_ids` assertion
// holds. Bodies are shaped as 0.26.2 sends them (with `record_stability_info`).

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { ALICE, startTestApp, type TestApp } from './helpers/app.js'
import { createBaseSampler, createSession } from './helpers/conformance.js'
import { call, listen } from './helpers/http.js'
import { assertModel } from './helpers/sdk-models.js'
import * as newer from './helpers/sdk-newer-models.js'
import { sdkDecodeSampleResponse } from './helpers/sdk-proto.js'

let t: TestApp
let base: string
let samplerId: string

before(async () => {
  t = await startTestApp()
  base = await listen(t.app)
  const sessionId = await createSession(base, ALICE)
  samplerId = await createBaseSampler(base, ALICE, sessionId)
})

after(() => t.close())

/** An asample body as SDK 0.26.2's SamplingClient builds it. */
function body026(seqId: number, numSamples: number, extra: Record<string, unknown> = {}) {
  return {
    num_samples: numSamples,
    prompt: { chunks: [{ tokens: [3, 4, 5], type: 'encoded_text' }] },
    sampling_params: { max_tokens: 2, temperature: 1, top_k: -1, top_p: 1 },
    sampling_session_id: samplerId,
    seq_id: seqId,
    prompt_logprobs: false,
    topk_prompt_logprobs: 0,
    record_stability_info: false,
    type: 'sample',
    ...extra,
  }
}

async function submit(json: Record<string, unknown>) {
  const a = await call(base, 'POST', '/asample', { key: ALICE, json })
  assert.equal(a.status, 200, a.text)
  assertModel(newer.SampleFuture, a.json, 'UntypedAPIFuture (0.26.2)')
  return a.json as { request_id: string; sample_sequence_ids: string[] }
}

async function sequencesOf(requestId: string): Promise<number> {
  for (;;) {
    const res = await fetch(`${base}/api/v1/retrieve_future`, {
      method: 'POST',
      headers: { 'x-api-key': ALICE, 'content-type': 'application/json', accept: 'application/x-protobuf' },
      body: JSON.stringify({ request_id: requestId, allow_metadata_only: true }),
    })
    const bytes = new Uint8Array(await res.arrayBuffer())
    if ((res.headers.get('content-type') ?? '').includes('x-protobuf'))
      return sdkDecodeSampleResponse(bytes).sequences.length
  }
}

test('asample promises one unique id per requested sample, matching the sequences returned', async () => {
  const f = await submit(body026(0, 3))
  newer.assertAttachable(f.sample_sequence_ids, await sequencesOf(f.request_id))
  assert.equal(f.sample_sequence_ids.length, 3)
})

test('compute_logprobs (num_samples 1, prompt_logprobs) gets exactly one id', async () => {
  const f = await submit(
    body026(1, 1, {
      sampling_params: { max_tokens: 1, temperature: 1, top_k: -1, top_p: 1 },
      prompt_logprobs: true,
    }),
  )
  newer.assertAttachable(f.sample_sequence_ids, await sequencesOf(f.request_id))
})

test('a resubmitted seq_id answers the same future and ids; other requests never reuse an id', async () => {
  const first = await submit(body026(7, 2))
  const again = await submit(body026(7, 2))
  assert.deepEqual(again, first)
  const other = await submit(body026(8, 2))
  const all = [...first.sample_sequence_ids, ...other.sample_sequence_ids]
  assert.equal(new Set(all).size, all.length, `ids are unique across requests: ${all}`)
})
