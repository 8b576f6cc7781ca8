// Server-minted identifiers (spec §5.10): opaque session ids, request ids, and the derived training-run
// and sampler ids `<session>:train:<n>` / `<session>:sample:<n>`. Clients never choose ids.

import { randomBytes, randomUUID } from 'node:crypto'

/** `s-` + 16 hex chars: URL-safe, no `/`, so it can prefix run and sampler ids inside tinker:// paths. */
export function newSessionId(): string {
  return `s-${randomBytes(8).toString('hex')}`
}

export function newRequestId(): string {
  return randomUUID()
}

/** Identifies one server process; futures pending under another boot were lost in a restart. */
export function newBootId(): string {
  return randomBytes(6).toString('hex')
}

export function trainingRunId(sessionId: string, modelSeqId: number): string {
  return `${sessionId}:train:${modelSeqId}`
}

export function samplerId(sessionId: string, samplingSessionSeqId: number): string {
  return `${sessionId}:sample:${samplingSessionSeqId}`
}

/**
 * The ids of the sequences one sample request will produce (`sample_sequence_ids`, SDK ≥ 0.26): derived
 * from the request id, so a de-duplicated resubmission answers the same ids and they stay unique.
 */
export function sampleSequenceIds(requestId: string, numSamples: number): string[] {
  return Array.from({ length: numSamples }, (_, i) => `${requestId}:${i}`)
}

/** A checkpoint name for saves that gave none. */
export function generatedCheckpointName(): string {
  return `ckpt-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`
}
