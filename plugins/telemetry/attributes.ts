// Attribute keys shared by spans and metrics, in one place so dashboards and tests agree.

export const ATTR = {
  userId: 'user_id',
  sessionId: 'session_id',
  trainingRunId: 'training_run_id',
  samplingSessionId: 'sampling_session_id',
  requestId: 'request_id',
  model: 'model',
  futureKind: 'future_kind',
  outcome: 'outcome',
  engine: 'engine',
  engineOp: 'engine_op',
  adapterId: 'adapter_id',
  queue: 'queue',
  store: 'store',
  storeOp: 'store_op',
} as const
