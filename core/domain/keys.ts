// Store key layout: every durable record lives under one of these prefixes, so scans and restart
// recovery know where to look.

export const keys = {
  session: (id: string) => `session/${id}`,
  sessions: () => 'session/',
  /** X-Idempotency-Key of a create_session call → the session it created (per user). */
  sessionIdempotency: (userId: string, key: string) => `idem/session/${userId}/${key}`,
  run: (id: string) => `run/${id}`,
  runs: () => 'run/',
  /** A run's metrics history, in chunks numbered from 0 (zero-padded so that a scan returns them in order). */
  runMetric: (runId: string, chunk: number) => `metrics/${runId}/${String(chunk).padStart(10, '0')}`,
  runMetrics: (runId: string) => `metrics/${runId}/`,
  sampler: (id: string) => `sampler/${id}`,
  samplers: () => 'sampler/',
  checkpoint: (runId: string, checkpointId: string) => `ckpt/${runId}/${checkpointId}`,
  runCheckpoints: (runId: string) => `ckpt/${runId}/`,
  checkpoints: () => 'ckpt/',
  future: (id: string) => `future/${id}`,
}
