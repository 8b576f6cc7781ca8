// Training run records (spec §3.9, §3.22, §5.11): a LoRA adapter on a base model, owned by one user.

import type { AdamParams, LoraSpec } from '../engine.js'
import type { Json } from '../persistence.js'
import { type CheckpointRecord, toWireCheckpoint, type WireCheckpoint } from './checkpoint.js'

export type RunState = 'creating' | 'ready' | 'failed' | 'unloaded'

/** The run's latest durable adapter + optimizer state (persistence.durability; durable stores only). */
export type DurablePointer = {
  /** Directory relative to checkpoint_dir (`<user>/<run>/_state/<seq>`). */
  dir: string
  /** The optimizer step counter the state holds. */
  step: number
  /** The operation that produced it, its future and that future's result: a crash between writing the
   * pointer and finishing the future is reconciled from here, so an acknowledged state is never lost
   * and a durable one is never reported as lost. */
  seqId: number
  futureId: string
  result: Json
  at: number
  /**
   * Optimizer steps taken since the state in `dir` was written (every_step durability), in order: a
   * restore loads `dir` and runs them again, so that a step is durable without writing the whole state.
   */
  replay?: ReplayStep[]
}

/** One logged optimizer step: the forward_backward passes it applied (protobuf bodies, base64) and its Adam parameters. */
export type ReplayStep = {
  passes: string[]
  adam: Record<keyof AdamParams, number>
}

export type TrainingRunRecord = {
  id: string
  owner: string
  sessionId: string
  modelSeqId: number
  baseModel: string
  lora: LoraSpec
  userMetadata: Record<string, string> | null
  projectId: string | null
  state: RunState
  /** The create_model future, returned again for a repeated create_model. */
  createFutureId: string
  failure: string | null
  createdAt: number
  lastRequestAt: number
  /** Absent until the first durable point (and always with memory persistence). */
  durable?: DurablePointer | null
  /** Highest seq_id accepted, and the latest accepted (seq_id, future) pairs: after a restart the
   * sequencer continues above it and answers resubmissions with the (failed or finished) future. */
  lastSeqId?: number
  recentSeqs?: [number, string][]
}

export type WireTrainingRun = {
  training_run_id: string
  base_model: string
  model_owner: string
  is_lora: true
  corrupted: boolean
  lora_rank: number
  last_request_time: string
  last_checkpoint: WireCheckpoint | null
  last_sampler_checkpoint: WireCheckpoint | null
  user_metadata: Record<string, string> | null
}

/**
 * The run as `viewer` sees it; `checkpoints`: the run's live checkpoints the viewer may read, the newest
 * of each kind reported. Another user reads a run only through its published checkpoints, and sees no
 * more than those tell: no user_metadata, and its latest published checkpoint's time as its activity.
 */
export function toWireTrainingRun(
  r: TrainingRunRecord,
  checkpoints: CheckpointRecord[],
  viewer: string,
): WireTrainingRun {
  const newest = (kind: CheckpointRecord['kind']) => {
    const found = checkpoints.filter((c) => c.kind === kind).sort((a, b) => b.createdAt - a.createdAt)[0]
    return found ? toWireCheckpoint(found) : null
  }
  return {
    training_run_id: r.id,
    base_model: r.baseModel,
    model_owner: r.owner,
    is_lora: true,
    corrupted: r.state === 'failed',
    lora_rank: r.lora.rank,
    last_request_time: new Date(activityAt(r, checkpoints, viewer)).toISOString(),
    last_checkpoint: newest('weights'),
    last_sampler_checkpoint: newest('sampler_weights'),
    user_metadata: r.owner === viewer ? r.userMetadata : null,
  }
}

/** When the run was last active as `viewer` may know it (listings sort by it, newest first). */
export function activityAt(r: TrainingRunRecord, checkpoints: CheckpointRecord[], viewer: string): number {
  if (r.owner === viewer) return r.lastRequestAt
  return Math.max(r.createdAt, ...checkpoints.map((c) => c.createdAt))
}
