// Sampling session records (spec §3.18, §3.20): a sampler id bound to a base model and optionally an
// immutable adapter (a checkpoint directory, or an in-memory snapshot taken by save_weights_for_sampler).

export type SamplerSource =
  | { kind: 'base' }
  /** dir: the sampler's own links to the checkpoint's files (records written before: the checkpoint's). */
  | {
      kind: 'checkpoint'
      runId: string
      checkpointId: string
      dir: string
      /** The checkpoint's owner, when another user: the sampler serves while they keep it published. */
      publishedBy?: string
    }
  /**
   * An in-memory snapshot in the process that took it. With a durable store its PEFT export follows:
   * `writing` until it is on disk, then `dir` (a restart or another process loads it from there).
   */
  | { kind: 'snapshot'; runId: string; writing?: boolean; dir?: string }

export type SamplerRecord = {
  id: string
  owner: string
  sessionId: string
  seqId: number
  baseModel: string
  /** The tinker:// path it was created from, or null (base model, ephemeral snapshot). */
  modelPath: string | null
  source: SamplerSource
  createdAt: number
  /** Its session expired: its own files are gone and it takes no new requests. */
  closed?: boolean
}

export function toWireSampler(s: SamplerRecord): {
  sampler_id: string
  base_model: string
  model_path: string | null
} {
  return { sampler_id: s.id, base_model: s.baseModel, model_path: s.modelPath }
}
