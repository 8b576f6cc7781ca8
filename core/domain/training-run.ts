// Training run records (spec §3.9, §3.22, §5.11): a LoRA adapter on a base model, owned by one user.

import type { LoraSpec } from '../engine.js'
import { type CheckpointRecord, toWireCheckpoint, type WireCheckpoint } from './checkpoint.js'

export type RunState = 'creating' | 'ready' | 'failed' | 'unloaded'

export type LoraRecord = {
  rank: number
  alpha: number
  seed: number
  trainAttn: boolean
  trainMlp: boolean
  trainUnembed: boolean
}

export type TrainingRunRecord = {
  id: string
  owner: string
  sessionId: string
  modelSeqId: number
  baseModel: string
  lora: LoraRecord
  userMetadata: Record<string, string> | null
  projectId: string | null
  state: RunState
  /** The create_model future, returned again for a repeated create_model. */
  createFutureId: string
  failure: string | null
  createdAt: number
  lastRequestAt: number
}

export function loraSpec(l: LoraRecord): LoraSpec {
  return { ...l }
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

/** `checkpoints`: the run's live checkpoints; the newest of each kind is reported. */
export function toWireTrainingRun(r: TrainingRunRecord, checkpoints: CheckpointRecord[]): WireTrainingRun {
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
    last_request_time: new Date(r.lastRequestAt).toISOString(),
    last_checkpoint: newest('weights'),
    last_sampler_checkpoint: newest('sampler_weights'),
    user_metadata: r.userMetadata,
  }
}
