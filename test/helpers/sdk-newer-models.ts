// Validators for what SDK releases after 0.25 accept and require, written from the SDK's public type
// definitions at the commits named on each (thinking-machines-lab/tinker), independent of
// core/wire/schemas.ts. Same rules as sdk-models.ts (pydantic lax JSON mode, extra fields ignored).

import assert from 'node:assert/strict'
import { arrayOf, bool, type Check, int, literal, model, nullable, opt, str } from './sdk-models.js'

/**
 * 0.26.2 @0beab58b (lib/public_interfaces/sampling_client.py `_attach_sequence_ids`): the asample
 * future must carry `sample_sequence_ids`, and its length must equal the number of sequences returned.
 */
export const SampleFuture = model({
  request_id: str,
  model_id: opt(nullable(str)),
  sample_sequence_ids: arrayOf(str),
})

/** The SDK's own assertion, applied when the result arrives; the ids must also be unique to be useful. */
export function assertAttachable(ids: unknown, sequences: number): void {
  assert.ok(Array.isArray(ids), 'asample promises always carry sample_sequence_ids')
  assert.equal(ids.length, sequences, `${ids.length} sequence ids for ${sequences} sequences`)
  assert.equal(new Set(ids).size, ids.length, `sequence ids are unique: ${JSON.stringify(ids)}`)
}

/**
 * types/future_completion.py and futures_retrieve_response.py (first seen with 0.26.2's poller): a
 * union discriminated on `state`, so the server always sends it.
 */
const FutureCompletion: Check = (v, at) => {
  const state = (v as { state?: unknown } | null)?.state
  if (state === 'failed') return model({ state: literal('failed'), request_id: str })(v, at)
  return model({
    state: literal('finished'),
    request_id: str,
    response_payload_uncompressed_size: opt(nullable(int)),
  })(v, at)
}
export const FuturesRetrieveResponse = model({ completions: arrayOf(FutureCompletion), cursor: int })

/**
 * 0.39.0 @4801e02 (API reference, types/checkpoint): `base_model` joins the listing's Checkpoint, and
 * 0.30.4 @1e5777e widens `checkpoint_type` with "external".
 */
export const Checkpoint039 = model({
  checkpoint_id: str,
  checkpoint_type: literal('training', 'sampler', 'external'),
  time: str,
  tinker_path: str,
  size_bytes: opt(nullable(int)),
  public: opt(nullable(bool)),
  expires_at: opt(nullable(str)),
  base_model: opt(nullable(str)),
})
