// One TypeBox schema constant per Tinker JSON endpoint (spec §3, §4): body/querystring/params and
// responses, ready for a Fastify route's `schema`. Future results (what retrieve_future returns for each
// operation, §4.4) are separate constants. Static types share the constant's name.

import { type Static, Type } from '@sinclair/typebox'
import { OptimizerConfig, OptimParams } from './optimizer.js'
import {
  AccessScope,
  AdamParams,
  Checkpoint,
  Cursor,
  ErrorResponses,
  FutureError,
  LoraConfig,
  ModelInput,
  Nullable,
  Paging,
  ProjectId,
  RequestType,
  SampleFuture,
  SamplingParams,
  StringMap,
  Tags,
  TrainingRun,
  TryAgain,
  UntypedAPIFuture,
} from './schema-parts.js'

export * from './schema-parts.js'

const SdkVersionBody = Type.Object({ sdk_version: Type.Optional(Type.String()) })
const NoContent = { 204: Type.Null() } as const
const future = { 200: UntypedAPIFuture, ...ErrorResponses } as const
const ok = <T extends object>(schema: T) => ({ 200: schema, ...ErrorResponses }) as const

// ---- §3.1-3.8 bootstrap, sessions, telemetry, capabilities ----

export const ClientConfigResponse = Type.Object({
  pjwt_auth_enabled: Type.Optional(Type.Boolean()),
  credential_default_source: Type.Optional(Type.String()),
  sample_dispatch_bytes_semaphore_size: Type.Optional(Type.Integer()),
  inflight_response_bytes_semaphore_size: Type.Optional(Type.Integer()),
  parallel_fwdbwd_chunks: Type.Optional(Type.Boolean()),
  proto_compress_fwdbwd: Type.Optional(Type.Boolean()),
  fwdbwd_max_chunk_len: Type.Optional(Type.Integer({ minimum: 1 })),
  fwdbwd_max_chunk_bytes_count: Type.Optional(Type.Integer({ minimum: 1 })),
  fwdbwd_dispatch_bytes_semaphore_size: Type.Optional(Type.Integer()),
  billing_exception_max_pause_duration_sec: Type.Optional(Type.Number()),
  sample_no_retries: Type.Optional(Type.Boolean()),
  sample_enable_stuck_detection: Type.Optional(Type.Boolean()),
  sample_max_concurrent_requests: Type.Optional(Type.Integer()),
  use_pyqwest_transport: Type.Optional(Type.Boolean()),
  create_model_via_load_weights: Type.Optional(Type.Boolean()),
  proto_write_fwdbwd: Type.Optional(Type.Boolean()),
  fwd_via_fwdbwd: Type.Optional(Type.Boolean()),
  /** SDK ≥ 0.26: sampling clients long-poll retrieve_futures instead of one retrieve_future each. */
  sample_use_retrieve_futures: Type.Optional(Type.Boolean()),
})
export type ClientConfigResponse = Static<typeof ClientConfigResponse>
export const ClientConfigRoute = { body: SdkVersionBody, response: ok(ClientConfigResponse) }

export const DynamicConfigResponse = Type.Object({ refresh_interval_sec: Type.Number({ minimum: 10 }) })
export type DynamicConfigResponse = Static<typeof DynamicConfigResponse>
export const DynamicConfigRoute = { body: SdkVersionBody, response: ok(DynamicConfigResponse) }

export const CreateSessionRequest = Type.Object({
  tags: Type.Optional(Tags),
  user_metadata: Type.Optional(Nullable(Type.Record(Type.String(), Type.Unknown()))),
  sdk_version: Type.Optional(Type.String()),
  project_id: Type.Optional(Nullable(ProjectId)),
  type: RequestType,
})
export type CreateSessionRequest = Static<typeof CreateSessionRequest>
export const CreateSessionResponse = Type.Object({
  session_id: Type.String(),
  type: Type.Optional(Type.Literal('create_session')),
  info_message: Type.Optional(Nullable(Type.String())),
  warning_message: Type.Optional(Nullable(Type.String())),
  error_message: Type.Optional(Nullable(Type.String())),
})
export type CreateSessionResponse = Static<typeof CreateSessionResponse>
export const CreateSessionRoute = { body: CreateSessionRequest, response: ok(CreateSessionResponse) }

export const SessionHeartbeatRequest = Type.Object({ session_id: Type.String(), type: RequestType })
export type SessionHeartbeatRequest = Static<typeof SessionHeartbeatRequest>
export const SessionHeartbeatResponse = Type.Object({
  type: Type.Optional(Type.Literal('session_heartbeat')),
})
export const SessionHeartbeatRoute = { body: SessionHeartbeatRequest, response: ok(SessionHeartbeatResponse) }

/** Events are accepted whatever their shape (spec §3.6). */
export const TelemetryRequest = Type.Object({
  events: Type.Optional(Type.Array(Type.Unknown())),
  platform: Type.Optional(Type.String()),
  sdk_version: Type.Optional(Type.String()),
  session_id: Type.Optional(Type.String()),
  process_uuid: Type.Optional(Type.String()),
})
export type TelemetryRequest = Static<typeof TelemetryRequest>
export const TelemetryResponse = Type.Object({ status: Type.Literal('accepted') })
export const TelemetryRoute = { body: TelemetryRequest, response: ok(TelemetryResponse) }

/**
 * Liveness (spec §3.7: `{"status": "ok"}`): `degraded` while the store does not answer, still 200 (the
 * process is alive; restarting it would not bring the store back), with the reason under `store`.
 */
export const HealthzRoute = {
  response: ok(
    Type.Object({
      status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
      store: Type.Optional(Type.Object({ ok: Type.Boolean(), message: Type.Optional(Type.String()) })),
    }),
  ),
}

export const SupportedModel = Type.Object({
  model_name: Type.Optional(Type.String()),
  max_context_length: Type.Optional(Type.Integer({ minimum: 1 })),
})
export const ServerCapabilitiesResponse = Type.Object({ supported_models: Type.Array(SupportedModel) })
export type ServerCapabilitiesResponse = Static<typeof ServerCapabilitiesResponse>
export const GetServerCapabilitiesRoute = { response: ok(ServerCapabilitiesResponse) }

// ---- §3.9-3.17 training ----

export const CreateModelRequest = Type.Object({
  session_id: Type.String(),
  model_seq_id: Type.Integer({ minimum: 0 }),
  base_model: Type.String({ minLength: 1 }),
  user_metadata: Type.Optional(Nullable(StringMap)),
  lora_config: Type.Optional(LoraConfig),
  /** SDK ≥ 0.29.1 always sends it; only AdamW is accepted (core/wire/optimizer.ts). */
  optimizer_config: Type.Optional(Nullable(OptimizerConfig)),
  type: RequestType,
})
export type CreateModelRequest = Static<typeof CreateModelRequest>
export const CreateModelRoute = { body: CreateModelRequest, response: future }
export const CreateModelResult = Type.Object({
  model_id: Type.String(),
  type: Type.Optional(Type.Literal('create_model')),
})
export type CreateModelResult = Static<typeof CreateModelResult>

export const ModelIdRequest = Type.Object({ model_id: Type.String(), type: RequestType })
export type ModelIdRequest = Static<typeof ModelIdRequest>

export const GetInfoResponse = Type.Object({
  type: Type.Optional(Type.Literal('get_info')),
  model_id: Type.String(),
  model_data: Type.Object({
    arch: Type.Optional(Nullable(Type.String())),
    model_name: Type.Optional(Nullable(Type.String())),
    tokenizer_id: Type.Optional(Nullable(Type.String())),
  }),
  is_lora: Type.Optional(Nullable(Type.Boolean())),
  lora_rank: Type.Optional(Nullable(Type.Integer())),
  model_name: Type.Optional(Nullable(Type.String())),
})
export type GetInfoResponse = Static<typeof GetInfoResponse>
export const GetInfoRoute = { body: ModelIdRequest, response: ok(GetInfoResponse) }

export const UnloadModelRoute = { body: ModelIdRequest, response: future }
export const UnloadModelResult = Type.Object({
  model_id: Type.String(),
  type: Type.Optional(Type.Literal('unload_model')),
})
export type UnloadModelResult = Static<typeof UnloadModelResult>

const SeqId = Type.Integer({ minimum: 1 })
/**
 * Checkpoint TTLs are positive and bounded: the expiry is reported as an ISO datetime (`expires_at`),
 * and one beyond what a date can hold would break every later listing of the owner's checkpoints.
 */
export const MAX_TTL_SECONDS = 100 * 366 * 86_400
const TtlValue = Type.Integer({ minimum: 1, maximum: MAX_TTL_SECONDS })
const TtlSeconds = Type.Optional(Nullable(TtlValue))
/**
 * A checkpoint name: it becomes the last segment of a tinker:// path (spec §3.14). The service checks
 * it (checkCheckpointName in paths.ts), counting UTF-8 bytes, which a schema cannot.
 */
const CheckpointName = Type.String()

/** SDK 0.25 sends `adam_params`, SDK ≥ 0.29.1 `optim_params` (core/wire/optimizer.ts reads either). */
export const OptimStepRequest = Type.Object({
  adam_params: Type.Optional(AdamParams),
  optim_params: Type.Optional(Nullable(OptimParams)),
  model_id: Type.String(),
  seq_id: SeqId,
  type: RequestType,
})
export type OptimStepRequest = Static<typeof OptimStepRequest>
/** An optim_step once its AdamW parameters are resolved. */
export type OptimStep = Omit<OptimStepRequest, 'adam_params' | 'optim_params'> & { adam_params: AdamParams }
export const OptimStepRoute = { body: OptimStepRequest, response: future }
export const OptimStepResult = Type.Object({
  metrics: Type.Optional(Nullable(Type.Record(Type.String(), Type.Number()))),
})
export type OptimStepResult = Static<typeof OptimStepResult>

export const SaveWeightsRequest = Type.Object({
  model_id: Type.String(),
  path: Type.Optional(Nullable(CheckpointName)),
  seq_id: SeqId,
  ttl_seconds: TtlSeconds,
  overwrite: Type.Boolean({ default: false }),
  type: RequestType,
})
export type SaveWeightsRequest = Static<typeof SaveWeightsRequest>
export const SaveWeightsRoute = { body: SaveWeightsRequest, response: future }
export const SaveWeightsResult = Type.Object({
  path: Type.String(),
  type: Type.Optional(Type.Literal('save_weights')),
})
export type SaveWeightsResult = Static<typeof SaveWeightsResult>

/** Normal addressing has model_id + seq_id; create-via-load addressing has session_id + model_seq_id. */
export const LoadWeightsRequest = Type.Object({
  model_id: Type.Optional(Type.String()),
  seq_id: Type.Optional(SeqId),
  path: Type.String({ minLength: 1 }),
  optimizer: Type.Boolean({ default: false }),
  weights_access_token: Type.Optional(Nullable(Type.String())),
  session_id: Type.Optional(Type.String()),
  model_seq_id: Type.Optional(Type.Integer({ minimum: 0 })),
  base_model: Type.Optional(Nullable(Type.String())),
  user_metadata: Type.Optional(Nullable(StringMap)),
  /** Create-via-load addressing of SDK ≥ 0.29.1; only AdamW is accepted. */
  optimizer_config: Type.Optional(Nullable(OptimizerConfig)),
  type: RequestType,
})
export type LoadWeightsRequest = Static<typeof LoadWeightsRequest>
export const LoadWeightsRoute = { body: LoadWeightsRequest, response: future }
export const LoadWeightsResult = Type.Object({
  path: Type.Optional(Nullable(Type.String())),
  model_id: Type.Optional(Nullable(Type.String())),
  type: Type.Optional(Type.Literal('load_weights')),
})
export type LoadWeightsResult = Static<typeof LoadWeightsResult>

/** Named mode has `path`; ephemeral mode has `sampling_session_seq_id` instead (spec §3.16). */
export const SaveWeightsForSamplerRequest = Type.Object({
  model_id: Type.String(),
  path: Type.Optional(Nullable(CheckpointName)),
  seq_id: SeqId,
  ttl_seconds: TtlSeconds,
  sampling_session_seq_id: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  type: RequestType,
})
export type SaveWeightsForSamplerRequest = Static<typeof SaveWeightsForSamplerRequest>
export const SaveWeightsForSamplerRoute = { body: SaveWeightsForSamplerRequest, response: future }
export const SaveWeightsForSamplerResult = Type.Object({
  path: Type.Optional(Nullable(Type.String())),
  sampling_session_id: Type.Optional(Nullable(Type.String())),
  type: Type.Optional(Type.Literal('save_weights_for_sampler')),
})
export type SaveWeightsForSamplerResult = Static<typeof SaveWeightsForSamplerResult>

export const WeightsInfoRequest = Type.Object({ tinker_path: Type.String() })
export type WeightsInfoRequest = Static<typeof WeightsInfoRequest>
export const WeightsInfoResponse = Type.Object({
  base_model: Type.String(),
  is_lora: Type.Boolean(),
  lora_rank: Type.Optional(Nullable(Type.Integer())),
  train_unembed: Type.Optional(Nullable(Type.Boolean())),
  train_mlp: Type.Optional(Nullable(Type.Boolean())),
  train_attn: Type.Optional(Nullable(Type.Boolean())),
})
export type WeightsInfoResponse = Static<typeof WeightsInfoResponse>
export const WeightsInfoRoute = { body: WeightsInfoRequest, response: ok(WeightsInfoResponse) }

// ---- §3.18-3.20 sampling ----

export const CreateSamplingSessionRequest = Type.Object({
  session_id: Type.String(),
  sampling_session_seq_id: Type.Integer({ minimum: 0 }),
  base_model: Type.Optional(Nullable(Type.String())),
  model_path: Type.Optional(Nullable(Type.String())),
  type: RequestType,
})
export type CreateSamplingSessionRequest = Static<typeof CreateSamplingSessionRequest>
export const CreateSamplingSessionResponse = Type.Object({
  sampling_session_id: Type.String(),
  type: Type.Optional(Type.Literal('create_sampling_session')),
})
export type CreateSamplingSessionResponse = Static<typeof CreateSamplingSessionResponse>
export const CreateSamplingSessionRoute = {
  body: CreateSamplingSessionRequest,
  response: ok(CreateSamplingSessionResponse),
}

export const SampleRequest = Type.Object({
  num_samples: Type.Integer({ minimum: 1, default: 1 }),
  prompt: ModelInput,
  sampling_params: SamplingParams,
  sampling_session_id: Type.Optional(Nullable(Type.String())),
  seq_id: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  base_model: Type.Optional(Nullable(Type.String())),
  model_path: Type.Optional(Nullable(Type.String())),
  prompt_logprobs: Type.Boolean({ default: false }),
  topk_prompt_logprobs: Type.Integer({ minimum: 0, default: 0 }),
  type: RequestType,
})
export type SampleRequest = Static<typeof SampleRequest>
/** The result arrives as a protobuf SampleResponse (core/wire/proto.ts). */
export const ASampleRoute = { body: SampleRequest, response: { 200: SampleFuture, ...ErrorResponses } }

export const SamplerParams = Type.Object({ sampler_id: Type.String() })
export const SamplerResponse = Type.Object({
  sampler_id: Type.String(),
  base_model: Type.String(),
  model_path: Type.Optional(Nullable(Type.String())),
})
export type SamplerResponse = Static<typeof SamplerResponse>
export const GetSamplerRoute = { params: SamplerParams, response: ok(SamplerResponse) }

// ---- §4 retrieve_future ----

export const RetrieveFutureRequest = Type.Object({
  request_id: Type.String({ minLength: 1 }),
  allow_metadata_only: Type.Optional(Type.Boolean()),
})
export type RetrieveFutureRequest = Static<typeof RetrieveFutureRequest>
/** JSON answers; sample and forward/backward results are protobuf bodies and bypass this schema. */
export const RetrieveFutureResponse = Type.Union([
  TryAgain,
  FutureError,
  CreateModelResult,
  OptimStepResult,
  SaveWeightsResult,
  LoadWeightsResult,
  SaveWeightsForSamplerResult,
  UnloadModelResult,
])
export type RetrieveFutureResponse = Static<typeof RetrieveFutureResponse>
/**
 * The 200 schema is an open object: as a serializer schema the union above would pick its first
 * matching branch (all-optional results match anything) and strip the other fields.
 */
export const RetrieveFutureRoute = {
  body: RetrieveFutureRequest,
  response: {
    200: Type.Object({}, { additionalProperties: true }),
    408: Type.Object({ queue_state: Type.Optional(Type.String()) }, { additionalProperties: true }),
    ...ErrorResponses,
  },
}

// ---- retrieve_futures (SDK ≥ 0.26, sdk-after-0.25.md §2) ----

export const FuturesRetrieveRequest = Type.Object({
  target: Type.Object({
    type: Type.Optional(Type.Literal('sampling_session')),
    sampling_session_id: Type.String({ minLength: 1 }),
    cloned_sampler_id: Type.Integer({ minimum: 0, default: 0 }),
  }),
  prev_cursor: Type.Integer({ minimum: 0, default: 0 }),
  /** Seconds; the server holds the poll for at most its own long-poll period. */
  timeout: Type.Optional(Nullable(Type.Number({ minimum: 0 }))),
})
export type FuturesRetrieveRequest = Static<typeof FuturesRetrieveRequest>
export const FutureCompletion = Type.Object({
  state: Type.Union([Type.Literal('finished'), Type.Literal('failed')]),
  request_id: Type.String(),
})
export const FuturesRetrieveResponse = Type.Object({
  completions: Type.Array(FutureCompletion),
  cursor: Type.Integer({ minimum: 0 }),
})
export type FuturesRetrieveResponse = Static<typeof FuturesRetrieveResponse>
export const RetrieveFuturesRoute = { body: FuturesRetrieveRequest, response: ok(FuturesRetrieveResponse) }

// ---- §3.22-3.24 REST ----

export const TrainingRunParams = Type.Object({ training_run_id: Type.String() })
export const AccessQuery = Type.Object({ access_scope: Type.Optional(AccessScope) })

export const ListTrainingRunsQuery = Type.Object({
  ...Paging(20),
  access_scope: Type.Optional(AccessScope),
  project_id: Type.Optional(ProjectId),
})
export type ListTrainingRunsQuery = Static<typeof ListTrainingRunsQuery>
export const TrainingRunsResponse = Type.Object({ training_runs: Type.Array(TrainingRun), cursor: Cursor })
export type TrainingRunsResponse = Static<typeof TrainingRunsResponse>
export const ListTrainingRunsRoute = {
  querystring: ListTrainingRunsQuery,
  response: ok(TrainingRunsResponse),
}
export const GetTrainingRunRoute = {
  params: TrainingRunParams,
  querystring: AccessQuery,
  response: ok(TrainingRun),
}

export const CheckpointsResponse = Type.Object({
  checkpoints: Type.Array(Checkpoint),
  cursor: Type.Optional(Nullable(Cursor)),
})
export type CheckpointsResponse = Static<typeof CheckpointsResponse>
export const ListRunCheckpointsRoute = { params: TrainingRunParams, response: ok(CheckpointsResponse) }
export const ListUserCheckpointsQuery = Type.Object(Paging(100))
export const ListUserCheckpointsRoute = {
  querystring: ListUserCheckpointsQuery,
  response: ok(CheckpointsResponse),
}

/** `*` is the tail after `/checkpoints/`: a checkpoint id plus an optional action (spec §3.23). */
export const CheckpointParams = Type.Object({ training_run_id: Type.String(), '*': Type.String() })
export type CheckpointParams = Static<typeof CheckpointParams>
export const DeleteCheckpointRoute = {
  params: CheckpointParams,
  response: { ...NoContent, ...ErrorResponses },
}
export const PublishCheckpointRoute = DeleteCheckpointRoute
export const CheckpointTtlRequest = Type.Object({ ttl_seconds: Nullable(TtlValue) })
export type CheckpointTtlRequest = Static<typeof CheckpointTtlRequest>
export const CheckpointTtlRoute = {
  params: CheckpointParams,
  body: CheckpointTtlRequest,
  response: { ...NoContent, ...ErrorResponses },
}
/** The 200 variant; the 302 variant carries only a Location (and optional Expires) header. */
export const CheckpointArchiveResponse = Type.Object({
  url: Type.String(),
  expires: Type.Optional(Type.String()),
})
export type CheckpointArchiveResponse = Static<typeof CheckpointArchiveResponse>
export const CheckpointArchiveRoute = {
  params: CheckpointParams,
  response: { 200: CheckpointArchiveResponse, 302: Type.Null(), ...ErrorResponses },
}

export const ListSessionsQuery = Type.Object({ ...Paging(20), access_scope: Type.Optional(AccessScope) })
export const SessionsResponse = Type.Object({ sessions: Type.Array(Type.String()) })
export type SessionsResponse = Static<typeof SessionsResponse>
export const ListSessionsRoute = { querystring: ListSessionsQuery, response: ok(SessionsResponse) }
export const SessionParams = Type.Object({ session_id: Type.String() })
export const SessionResponse = Type.Object({
  training_run_ids: Type.Array(Type.String()),
  sampler_ids: Type.Array(Type.String()),
})
export type SessionResponse = Static<typeof SessionResponse>
export const GetSessionRoute = {
  params: SessionParams,
  querystring: AccessQuery,
  response: ok(SessionResponse),
}
export const SessionProjectRequest = Type.Object({ project_id: ProjectId })
export const SessionProjectRoute = {
  params: SessionParams,
  body: SessionProjectRequest,
  response: { ...NoContent, ...ErrorResponses },
}
/** The SDK's `_SessionTraceExportPollResponse` (polled every 5 s until ready or failed). */
export const SessionTraceExportResponse = Type.Object({
  status: Type.Union([Type.Literal('pending'), Type.Literal('ready'), Type.Literal('failed')]),
  url: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
})
export const SessionTraceExportRoute = { params: SessionParams, response: ok(SessionTraceExportResponse) }
