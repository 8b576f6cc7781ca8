// The JSON shapes the console reads (spec §5.11 REST objects and the README's REST extensions).

export interface Checkpoint {
  checkpoint_id: string
  checkpoint_type: 'training' | 'sampler'
  time: string
  tinker_path: string
  size_bytes?: number | null
  public?: boolean
  expires_at?: string | null
}

export interface TrainingRun {
  training_run_id: string
  base_model: string
  model_owner: string
  lora_rank?: number | null
  last_request_time: string
  corrupted?: boolean
  last_checkpoint?: Checkpoint | null
  last_sampler_checkpoint?: Checkpoint | null
}

export interface MetricPoint {
  n: number
  kind: 'forward' | 'forward_backward' | 'optim_step'
  step: number
  seq_id: number
  time: string
  metrics: Record<string, number>
}

export interface RunMetrics {
  training_run_id: string
  created_time: string
  last_step: number
  points: MetricPoint[]
}

export type { UsageTotals, UserUsage } from '../../telemetry/usage-wire.js'

export interface BillingEvent {
  bucket_start: string
  base_model: string
  event_info: { type: string; token_count?: number }
}

export interface RoleLoad {
  queue_depth: number
  busy_fraction: number
}

export interface ServerStatus {
  models: { model_name: string; state: string; training: RoleLoad; sampling: RoleLoad }[]
}
