// Checkpoint records (spec §3.23, §5.10, §5.11, §7.3): immutable snapshots of a run's adapter, readable
// by their owner, or by everyone once published; expired ones disappear from listings and lookups.

import type { LoraSpec } from '../engine.js'
import { type CheckpointKind, formatCheckpointId, formatTinkerPath } from '../wire/paths.js'

export type CheckpointRecord = {
  runId: string
  owner: string
  kind: CheckpointKind
  name: string
  baseModel: string
  lora: LoraSpec
  /** Training checkpoints carry optimizer state; sampler checkpoints do not. */
  hasOptimizer: boolean
  /** Directory relative to checkpoint_dir. */
  dir: string
  createdAt: number
  sizeBytes: number
  public: boolean
  expiresAt: number | null
}

export function isCheckpointExpired(c: CheckpointRecord, now: number): boolean {
  return c.expiresAt !== null && c.expiresAt <= now
}

export function canReadCheckpoint(c: CheckpointRecord, userId: string): boolean {
  return c.owner === userId || c.public
}

export type WireCheckpoint = {
  checkpoint_id: string
  checkpoint_type: 'training' | 'sampler'
  time: string
  tinker_path: string
  size_bytes: number
  public: boolean
  expires_at: string | null
  /** SDK ≥ 0.39 lists it; older SDKs ignore it. */
  base_model: string
}

export function toWireCheckpoint(c: CheckpointRecord): WireCheckpoint {
  return {
    checkpoint_id: formatCheckpointId(c.kind, c.name),
    checkpoint_type: c.kind === 'weights' ? 'training' : 'sampler',
    time: new Date(c.createdAt).toISOString(),
    tinker_path: formatTinkerPath(c),
    size_bytes: c.sizeBytes,
    public: c.public,
    expires_at: c.expiresAt === null ? null : new Date(c.expiresAt).toISOString(),
    base_model: c.baseModel,
  }
}
