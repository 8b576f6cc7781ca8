// The usage answers' wire shapes (GET /api/v1/usage and /api/v1/admin/usage), kept free of imports so
// that the console's browser code (plugins/console/ui/types.ts) types its fetches with the same ones.

export interface UsageTotals {
  training_tokens: number
  prefill_tokens: number
  sampled_tokens: number
  /** Bytes of checkpoints currently stored (saves minus deletions). */
  checkpoint_bytes: number
  /** Checkpoints saved (one per positive checkpoint_bytes event). */
  checkpoints_saved: number
  storage_gigabyte_hours: number
}

export interface UserUsage {
  user_id: string
  totals: UsageTotals
  models: Record<string, UsageTotals>
}
