// The configuration schema: the single source of truth for every key, its type and its default.
// Keys follow TuFT's tuft_config.yaml so TuFT configs load unchanged; objects reject unknown keys.

import { type Static, Type } from '@sinclair/typebox'
import { METRICS_CHUNK } from '../core/services/run-metrics.js'

const strict = { additionalProperties: false } as const

/** An engine choice for one capability of one model; options are checked by the provider's own schema. */
export const EngineChoiceSchema = Type.Object(
  {
    provider: Type.String({
      minLength: 1,
      default: 'native',
      description: 'built-in name or npm module specifier',
    }),
    options: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  },
  strict,
)

export const ModelConfigSchema = Type.Object(
  {
    model_name: Type.String({ minLength: 1, description: 'the name clients pass as base_model' }),
    model_path: Type.String({ minLength: 1, description: 'Hugging Face model directory' }),
    max_model_len: Type.Optional(Type.Integer({ minimum: 1, description: "default: the model's own limit" })),
    tensor_parallel_size: Type.Integer({ minimum: 1, default: 1 }),
    capabilities: Type.Array(Type.Union([Type.Literal('training'), Type.Literal('sampling')]), {
      minItems: 1,
      uniqueItems: true,
      default: ['training', 'sampling'],
    }),
    max_lora_rank: Type.Integer({ minimum: 1, maximum: 1024, default: 128 }),
    lora_alpha_ratio: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, description: 'lora_alpha = ratio × rank; default alpha is 32' }),
    ),
    max_loras: Type.Optional(Type.Integer({ minimum: 1, description: 'bound on resident sampler adapters' })),
    tokenizer_id: Type.Optional(Type.String({ description: 'reported by get_info; default: model_name' })),
    training: { ...EngineChoiceSchema, default: {} },
    sampling: { ...EngineChoiceSchema, default: {} },
    // TuFT's per-model sampling defaults, applied when a request leaves the field out.
    temperature: Type.Optional(Type.Number({ minimum: 0 })),
    top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    top_k: Type.Optional(Type.Integer()),
    logprobs: Type.Optional(Type.Integer({ minimum: 0 })),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
    min_response_tokens: Type.Optional(Type.Integer({ minimum: 0 })),
    // TuFT GPU placement keys: accepted so TuFT configs load; the native engine has no use for them.
    colocate: Type.Optional(Type.Boolean()),
    sampling_memory_fraction: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    quantization: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  strict,
)

export const PersistenceConfigSchema = Type.Object(
  {
    mode: Type.String({
      default: 'memory',
      description: 'memory | file | redis (TuFT: DISABLE, FILE, REDIS, ...)',
    }),
    file_path: Type.Optional(Type.String({ description: 'file store directory' })),
    redis_url: Type.Optional(Type.String()),
    namespace: Type.String({ minLength: 1, default: 'tuft' }),
    future_ttl_seconds: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { default: 86400 }),
    durability: Type.Union([Type.Literal('every_step'), Type.Literal('checkpoints')], {
      default: 'every_step',
      description: 'when training state is made durable: after every optim_step, or only at save_state',
    }),
    check_fields: Type.Optional(Type.Array(Type.String())),
    lease_ttl_ms: Type.Integer({
      minimum: 300,
      default: 15_000,
      description: "shared stores: how long after its last renewal a dead server's runs are taken over",
    }),
    // Store tuning; absent keys take the store's own defaults (persistence/README.md).
    compact_bytes: Type.Optional(
      Type.Integer({ minimum: 1, description: 'file: journal size that triggers a snapshot' }),
    ),
    snapshot_interval_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'file: periodic snapshot' })),
    sweep_interval_ms: Type.Optional(
      Type.Integer({ minimum: 10, description: 'memory/file: TTL sweep period' }),
    ),
    connect_timeout_ms: Type.Optional(
      Type.Integer({ minimum: 1, description: 'redis: boot connection bound' }),
    ),
    command_timeout_ms: Type.Optional(Type.Integer({ minimum: 1, description: 'redis: per-command bound' })),
  },
  strict,
)

export const TelemetryConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    service_name: Type.String({ minLength: 1, default: 'tuft' }),
    otlp_endpoint: Type.Optional(Type.String()),
    otlp_protocol: Type.Union(
      [Type.Literal('http/protobuf'), Type.Literal('http/json'), Type.Literal('grpc')],
      {
        default: 'http/protobuf',
      },
    ),
    resource_attributes: Type.Record(Type.String(), Type.String(), { default: {} }),
    prometheus: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        path: Type.String({ pattern: '^/', default: '/metrics' }),
      },
      { ...strict, default: {} },
    ),
    operators: Type.Array(Type.String(), {
      default: [],
      description: 'alias of the top-level operators (kept for existing configs)',
    }),
    trace_sample_ratio: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 1,
      description:
        'fraction of new traces recorded and exported (by trace id); a traceparent sent by the client keeps its decision',
    }),
    export_request_logs: Type.Boolean({
      default: false,
      description:
        "also export Fastify's per-request access lines as OTel log records (the request span has them)",
    }),
  },
  strict,
)

export const ServerConfigSchema = Type.Object(
  {
    body_limit_bytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 }),
    long_poll_timeout_ms: Type.Integer({ minimum: 100, maximum: 40_000, default: 25_000 }),
    session_expiry_seconds: Type.Integer({ minimum: 30, default: 900 }),
    sample_queue_limit: Type.Integer({ minimum: 1, default: 1024 }),
    max_batch_tokens: Type.Integer({ minimum: 1, default: 16384 }),
    seq_gap_timeout_ms: Type.Integer({ minimum: 0, default: 30_000 }),
    shutdown_grace_ms: Type.Integer({ minimum: 0, default: 10_000 }),
    run_metrics_history: Type.Integer({
      minimum: METRICS_CHUNK,
      default: 1000,
      description: 'metric points (one per forward, forward_backward, optim_step) kept per training run',
    }),
    public_base_url: Type.Optional(
      Type.String({
        description:
          "external URL for archive links and peers; default: the listen address (a wildcard one: the machine's name), never a request's Host",
      }),
    ),
  },
  strict,
)

export const OpenAiApiConfigSchema = Type.Object(
  {
    runtime_lora_updating: Type.Boolean({
      default: false,
      description: "vLLM's /v1/load_lora_adapter and /v1/unload_lora_adapter, for operators only",
    }),
    lora_roots: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'directories whose adapters operators may load at runtime',
    }),
    max_logprobs: Type.Integer({
      minimum: 0,
      default: 20,
      description: "most logprobs / prompt_logprobs one request may ask for (vLLM's --max-logprobs)",
    }),
  },
  strict,
)

export const TuftConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 10610 }),
    log_level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
      { default: 'info' },
    ),
    checkpoint_dir: Type.String({ minLength: 1, default: '~/.cache/tuft/checkpoints' }),
    model_cache_dir: Type.String({ minLength: 1, default: '~/.cache/tuft/models' }),
    model_owner: Type.String({ minLength: 1, default: 'local-user' }),
    supported_models: Type.Array(ModelConfigSchema, { default: [] }),
    authorized_users: Type.Record(Type.String(), Type.String({ minLength: 1 }), {
      default: {},
      description: 'API key (tml-...) → user id',
    }),
    operators: Type.Array(Type.String(), {
      default: [],
      description: 'user ids allowed to administer the server (read all usage, load adapters at runtime)',
    }),
    persistence: { ...PersistenceConfigSchema, default: {} },
    openai_api: { ...OpenAiApiConfigSchema, default: {} },
    telemetry: { ...TelemetryConfigSchema, default: {} },
    server: { ...ServerConfigSchema, default: {} },
  },
  strict,
)

export type TuftConfig = Static<typeof TuftConfigSchema>
export type ModelConfig = Static<typeof ModelConfigSchema>
export type EngineChoice = Static<typeof EngineChoiceSchema>
export type PersistenceConfig = Static<typeof PersistenceConfigSchema>
export type TelemetryConfig = Static<typeof TelemetryConfigSchema>
export type ServerConfig = Static<typeof ServerConfigSchema>
export type OpenAiApiConfig = Static<typeof OpenAiApiConfigSchema>
