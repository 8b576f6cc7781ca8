// Validators that mirror what SDK 0.25's pydantic response models accept (spec §1.6, §3, §4.4, §5.11),
// written from the spec's prose and deliberately independent of core/wire/schemas.ts: checking the
// server against its own schemas would prove nothing. Rules applied, as pydantic v2 lax mode does for
// JSON: strings must be JSON strings (no number → str), integers must be integral numbers, datetimes
// ISO 8601 strings, Literal fields absent or exactly the literal, dict[str,str] values strings only,
// required fields present, unknown extra fields ignored.

import assert from 'node:assert/strict'

/** Returns the problems found in `value` (empty when it validates); `at` is a JSON path for messages. */
export type Check = (value: unknown, at: string) => string[]

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)
const expect = (ok: boolean, at: string, what: string, v: unknown) =>
  ok ? [] : [`${at}: expected ${what}, got ${typeName(v)} ${JSON.stringify(v)}`]

export const str: Check = (v, at) => expect(typeof v === 'string', at, 'string', v)
export const int: Check = (v, at) => expect(Number.isInteger(v), at, 'integer', v)
export const num: Check = (v, at) => expect(typeof v === 'number' && Number.isFinite(v), at, 'number', v)
export const bool: Check = (v, at) => expect(typeof v === 'boolean', at, 'boolean', v)
export const datetime: Check = (v, at) =>
  expect(typeof v === 'string' && ISO_DATETIME.test(v) && !Number.isNaN(Date.parse(v)), at, 'ISO datetime', v)
export const literal =
  (...allowed: string[]): Check =>
  (v, at) =>
    expect(allowed.includes(v as string), at, `one of ${JSON.stringify(allowed)}`, v)
export const nullable =
  (inner: Check): Check =>
  (v, at) =>
    v === null ? [] : inner(v, at)
export const arrayOf =
  (item: Check): Check =>
  (v, at) =>
    Array.isArray(v) ? v.flatMap((x, i) => item(x, `${at}[${i}]`)) : expect(false, at, 'array', v)
export const record =
  (value: Check): Check =>
  (v, at) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.entries(v).flatMap(([k, x]) => value(x, `${at}.${k}`))
      : expect(false, at, 'object', v)

/** A field that may be absent (pydantic default); `null` only if the inner check allows it. */
export interface Optional {
  optional: Check
}
export const opt = (inner: Check): Optional => ({ optional: inner })

export function model(fields: Record<string, Check | Optional>): Check {
  return (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return expect(false, at, 'object', v)
    const obj = v as Record<string, unknown>
    return Object.entries(fields).flatMap(([name, spec]) => {
      const where = `${at}.${name}`
      if (typeof spec === 'function') return name in obj ? spec(obj[name], where) : [`${where}: required`]
      return name in obj ? spec.optional(obj[name], where) : []
    })
  }
}

/** An optional Literal discriminator: absent, or exactly `value` (spec §1.6). */
const tag = (value: string) => opt(literal(value))

// ---- §3 responses ----

export const ClientConfig = model({
  pjwt_auth_enabled: opt(bool),
  credential_default_source: opt(str),
  sample_dispatch_bytes_semaphore_size: opt(int),
  inflight_response_bytes_semaphore_size: opt(int),
  parallel_fwdbwd_chunks: opt(bool),
  proto_compress_fwdbwd: opt(bool),
  fwdbwd_max_chunk_len: opt(int),
  fwdbwd_max_chunk_bytes_count: opt(int),
  fwdbwd_dispatch_bytes_semaphore_size: opt(int),
  billing_exception_max_pause_duration_sec: opt(num),
  sample_no_retries: opt(bool),
  sample_enable_stuck_detection: opt(bool),
  sample_max_concurrent_requests: opt(int),
  use_pyqwest_transport: opt(bool),
  create_model_via_load_weights: opt(bool),
})
export const DynamicConfig = model({ refresh_interval_sec: opt(num) })
export const CreateSessionResponse = model({
  session_id: str,
  type: tag('create_session'),
  info_message: opt(nullable(str)),
  warning_message: opt(nullable(str)),
  error_message: opt(nullable(str)),
})
export const SessionHeartbeatResponse = model({ type: tag('session_heartbeat') })
/** Exactly {"status": "accepted"}: anything else makes the SDK resend forever (spec §3.6). */
export const TelemetryResponse = model({ status: literal('accepted') })
export const ServerCapabilities = model({
  supported_models: arrayOf(
    model({ model_name: opt(nullable(str)), max_context_length: opt(nullable(int)) }),
  ),
})
export const UntypedAPIFuture = model({ request_id: str, model_id: opt(nullable(str)) })
export const GetInfoResponse = model({
  type: tag('get_info'),
  model_id: str,
  model_data: model({
    arch: opt(nullable(str)),
    model_name: str, // Optional in the model, but get_tokenizer() asserts it is non-null
    tokenizer_id: opt(nullable(str)),
  }),
  is_lora: opt(nullable(bool)),
  lora_rank: opt(nullable(int)),
  model_name: opt(nullable(str)),
})
export const WeightsInfoResponse = model({
  base_model: str,
  is_lora: bool,
  lora_rank: int, // nullable in the model; the client crashes on null (spec §3.17)
  train_unembed: opt(nullable(bool)),
  train_mlp: opt(nullable(bool)),
  train_attn: opt(nullable(bool)),
})
export const CreateSamplingSessionResponse = model({
  sampling_session_id: str,
  type: tag('create_sampling_session'),
})
export const SamplerResponse = model({ sampler_id: str, base_model: str, model_path: opt(nullable(str)) })

// ---- §4.4 future results (JSON) ----

export const TryAgain = model({
  type: literal('try_again'),
  request_id: str,
  queue_state: literal('active', 'paused_capacity', 'paused_rate_limit'),
  queue_state_reason: opt(nullable(str)),
})
export const FutureFailure = model({ error: str, category: literal('user', 'server', 'unknown') })
export const CreateModelResult = model({ model_id: str, type: tag('create_model') })
export const OptimStepResult = model({ metrics: opt(nullable(record(num))) })
export const SaveWeightsResult = model({ path: str, type: tag('save_weights') })
export const LoadWeightsResult = model({
  path: opt(nullable(str)),
  model_id: opt(nullable(str)),
  type: tag('load_weights'),
})
export const SaveWeightsForSamplerResult = model({
  path: opt(nullable(str)),
  sampling_session_id: opt(nullable(str)),
  type: tag('save_weights_for_sampler'),
})

// ---- §5.11 REST objects ----

export const Cursor = model({ offset: int, limit: int, total_count: int })
export const Checkpoint = model({
  checkpoint_id: str,
  checkpoint_type: literal('training', 'sampler'),
  time: datetime,
  tinker_path: str,
  size_bytes: opt(nullable(int)),
  public: opt(bool),
  expires_at: opt(nullable(datetime)),
})
export const TrainingRun = model({
  training_run_id: str,
  base_model: str,
  model_owner: str,
  is_lora: bool,
  corrupted: opt(bool),
  lora_rank: opt(nullable(int)),
  last_request_time: datetime,
  last_checkpoint: opt(nullable(Checkpoint)),
  last_sampler_checkpoint: opt(nullable(Checkpoint)),
  user_metadata: opt(nullable(record(str))),
})
export const TrainingRunsResponse = model({ training_runs: arrayOf(TrainingRun), cursor: Cursor })
export const CheckpointsResponse = model({ checkpoints: arrayOf(Checkpoint), cursor: opt(nullable(Cursor)) })
export const SessionsResponse = model({ sessions: arrayOf(str) })
export const SessionResponse = model({ training_run_ids: arrayOf(str), sampler_ids: arrayOf(str) })
/** rest_client.py `_SessionTraceExportPollResponse`: the SDK asserts `url` once status is ready. */
export const SessionTraceExportPollResponse = model({
  status: literal('pending', 'ready', 'failed'),
  url: opt(nullable(str)),
  error: opt(nullable(str)),
})

/** Asserts `value` validates against `check`, naming the model in the failure. */
export function assertModel(check: Check, value: unknown, name: string): void {
  const problems = check(value, name)
  assert.deepEqual(problems, [], `${name} would fail the SDK's validation:\n${problems.join('\n')}`)
}

/**
 * The SDK merges chunk metrics by splitting each key on ':' (spec §5.6): exactly one colon and a known
 * reduction, or the user's call crashes (two colons / none) or silently loses the metric.
 */
export function assertMetricKeys(metrics: Record<string, unknown>, where: string): void {
  const reductions = ['sum', 'mean', 'min', 'max', 'slack', 'hash_unordered', 'unique']
  for (const [key, value] of Object.entries(metrics)) {
    const parts = key.split(':')
    assert.equal(parts.length, 2, `${where}: metric key '${key}' must contain exactly one ':'`)
    assert.ok(reductions.includes(parts[1]!), `${where}: metric '${key}' has an unknown reduction`)
    assert.equal(typeof value, 'number', `${where}: metric '${key}' must be a number`)
  }
}
