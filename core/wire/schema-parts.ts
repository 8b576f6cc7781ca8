// TypeBox building blocks of the Tinker JSON wire (spec §3, §4, §5): the objects several endpoints
// share. Requests tolerate unknown fields and an absent `type`; responses carry exactly the spec's shape.

import { FormatRegistry, Kind, type Static, type TSchema, Type, TypeRegistry } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { tuftError } from '../errors.js'

const INNER = Symbol('tuft.nullable.inner')

/**
 * `T | null` as one JSON-schema `type` list rather than anyOf: Fastify's ajv coerces types
 * (coerceTypes 'array'), and a failed anyOf branch's coercion sticks (null -> 0, 0 -> null), whereas a
 * type list that contains the value's own type never coerces it. A custom kind keeps TypeBox's own
 * Value.Check (used by the TS client) working on it.
 */
export function Nullable<T extends TSchema>(schema: T) {
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>
  if (typeof plain.type !== 'string') throw new Error('Nullable() needs a schema with a single JSON type')
  return Type.Unsafe<Static<T> | null>({
    ...plain,
    type: [plain.type, 'null'],
    [Kind]: 'TuftNullable',
    [INNER]: schema,
  })
}
TypeRegistry.Set<{ [INNER]: TSchema }>(
  'TuftNullable',
  (schema, value) => value === null || Value.Check(schema[INNER], value),
)

function isStop(value: unknown): boolean {
  if (value === null || typeof value === 'string') return true
  return Array.isArray(value) && value.every((v) => typeof v === 'string' || Number.isInteger(v))
}
TypeRegistry.Set('TuftStop', (_schema, value) => isStop(value))

/** The SDK's discriminator on every request model: accepted, never required, never checked. */
export const RequestType = Type.Optional(Type.String())

/**
 * A session's tags and project id: kept with the session and echoed in listings, so bounded (a longer
 * one is a 400 naming the bound).
 */
export const Tags = Type.Array(Type.String({ maxLength: 128 }), { maxItems: 64 })
export const ProjectId = Type.String({ maxLength: 256 })

/** Request-side string map; values must be strings since they are echoed back (spec §1.6). */
export const StringMap = Type.Record(Type.String(), Type.String())

export const ISODate = Type.String({ format: 'date-time' })
// ajv knows date-time through ajv-formats; TypeBox's Value.Check (the TS client) needs it registered.
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v)))
}

/** §1.9: the body of every non-2xx answer; extra members (e.g. `code`) pass through. */
export const ErrorBody = Type.Object({ detail: Type.String() }, { additionalProperties: true })
export type ErrorBody = Static<typeof ErrorBody>

export const ErrorResponses = { '4xx': ErrorBody, '5xx': ErrorBody } as const

// ---- §5.9 optimizer and adapter configuration ----

export const ADAM_DEFAULTS = {
  learning_rate: 1e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-12,
  weight_decay: 0,
  grad_clip_norm: 0,
} as const

/**
 * The ranges torch.optim.AdamW accepts (spec §7.2 "identical to torch.optim.AdamW"): a learning rate
 * of 0 is legal there and is where linear/cosine schedules end, so it must not be a 400.
 */
export const AdamParams = Type.Object({
  learning_rate: Type.Number({ minimum: 0, default: ADAM_DEFAULTS.learning_rate }),
  beta1: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: ADAM_DEFAULTS.beta1 }),
  beta2: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: ADAM_DEFAULTS.beta2 }),
  eps: Type.Number({ minimum: 0, default: ADAM_DEFAULTS.eps }),
  weight_decay: Type.Number({ minimum: 0, default: ADAM_DEFAULTS.weight_decay }),
  grad_clip_norm: Type.Number({ minimum: 0, default: ADAM_DEFAULTS.grad_clip_norm }),
})
export type AdamParams = Static<typeof AdamParams>

/** Fills absent Adam fields with the §5.9 defaults (for callers that bypass schema defaults). */
export function withAdamDefaults(partial: Partial<AdamParams> = {}): AdamParams {
  return {
    ...ADAM_DEFAULTS,
    ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)),
  }
}

export const LoraConfig = Type.Object({
  rank: Type.Integer({ minimum: 1, default: 32 }),
  seed: Type.Optional(Nullable(Type.Integer())),
  train_unembed: Type.Boolean({ default: true }),
  train_mlp: Type.Boolean({ default: true }),
  train_attn: Type.Boolean({ default: true }),
})
export type LoraConfig = Static<typeof LoraConfig>

// ---- §5.1 ModelInput (JSON form, in asample) ----

export const EncodedTextChunk = Type.Object({
  type: Type.Optional(Type.Literal('encoded_text')),
  tokens: Type.Array(Type.Integer({ minimum: 0 })),
})
export const ImageChunk = Type.Object({
  type: Type.Literal('image'),
  data: Type.String({ description: 'base64 image bytes' }),
  format: Type.Union([Type.Literal('png'), Type.Literal('jpeg')]),
  expected_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
})
export const ImageAssetPointerChunk = Type.Object({
  type: Type.Literal('image_asset_pointer'),
  location: Type.String(),
  format: Type.Union([Type.Literal('png'), Type.Literal('jpeg')]),
  expected_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
})
export const DmelChunk = Type.Object({
  type: Type.Literal('dmel'),
  dmel: Type.String({ description: 'base64 serialized audio-token tensor' }),
})
export const ModelInputChunk = Type.Union([EncodedTextChunk, ImageChunk, ImageAssetPointerChunk, DmelChunk])
export type ModelInputChunk = Static<typeof ModelInputChunk>

export const ModelInput = Type.Object({ chunks: Type.Array(ModelInputChunk) })
export type ModelInput = Static<typeof ModelInput>

// ---- §5.7 SamplingParams ----

export const SamplingParams = Type.Object({
  max_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))),
  seed: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  /** A bare string is ONE stop string; an array holds strings or token ids (see normalizeStop). */
  stop: Type.Optional(
    // A type list, not anyOf, for the coercion reason given at Nullable().
    Type.Unsafe<string | string[] | number[] | null>({
      [Kind]: 'TuftStop',
      type: ['string', 'array', 'null'],
      items: { type: ['string', 'integer'] },
    }),
  ),
  temperature: Type.Number({ minimum: 0, default: 1 }),
  top_k: Type.Integer({ default: -1 }),
  top_p: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 1 }),
})
export type SamplingParams = Static<typeof SamplingParams>

/** Splits `stop` into stop strings and stop token ids; a mixed or negative list is a 400. */
export function normalizeStop(stop: SamplingParams['stop']): { strings: string[]; tokens: number[] } {
  if (stop === undefined || stop === null) return { strings: [], tokens: [] }
  if (typeof stop === 'string') return { strings: [stop], tokens: [] }
  const list: unknown[] = stop
  if (list.every((s) => typeof s === 'string')) return { strings: list as string[], tokens: [] }
  if (list.every((t) => Number.isInteger(t) && (t as number) >= 0))
    return { strings: [], tokens: list as number[] }
  throw tuftError(
    'TUFT_BAD_REQUEST',
    'sampling_params.stop must be a string, a list of strings or a list of token ids',
  )
}

// ---- §4 futures ----

export const UntypedAPIFuture = Type.Object({
  request_id: Type.String(),
  model_id: Type.Optional(Type.String()),
})
export type UntypedAPIFuture = Static<typeof UntypedAPIFuture>

/**
 * The asample future (SDK ≥ 0.26): one server-minted id per requested sample, which the SDK copies into
 * each returned `SampledSequence.sequence_id`; it asserts the list is present and as long as
 * `sequences`. SDK 0.25 ignores the extra member.
 */
export const SampleFuture = Type.Object({
  request_id: Type.String(),
  model_id: Type.Optional(Type.String()),
  sample_sequence_ids: Type.Array(Type.String()),
})
export type SampleFuture = Static<typeof SampleFuture>

export const QueueState = Type.Union([
  Type.Literal('active'),
  Type.Literal('paused_capacity'),
  Type.Literal('paused_rate_limit'),
])
export type QueueState = Static<typeof QueueState>

export const TryAgain = Type.Object({
  type: Type.Literal('try_again'),
  request_id: Type.String(),
  queue_state: QueueState,
  queue_state_reason: Type.Optional(Type.String()),
})
export type TryAgain = Static<typeof TryAgain>

export const FailureCategory = Type.Union([
  Type.Literal('user'),
  Type.Literal('server'),
  Type.Literal('unknown'),
])

export const FutureError = Type.Object({
  error: Type.String(),
  category: FailureCategory,
})
export type FutureError = Static<typeof FutureError>

// ---- §5.11 REST objects ----

export const Cursor = Type.Object({
  offset: Type.Integer({ minimum: 0 }),
  limit: Type.Integer({ minimum: 0 }),
  total_count: Type.Integer({ minimum: 0 }),
})
export type Cursor = Static<typeof Cursor>

export const Checkpoint = Type.Object({
  checkpoint_id: Type.String({ description: '"weights/<name>" or "sampler_weights/<name>"' }),
  checkpoint_type: Type.Union([Type.Literal('training'), Type.Literal('sampler')]),
  time: ISODate,
  tinker_path: Type.String(),
  size_bytes: Type.Optional(Nullable(Type.Integer({ minimum: 0 }))),
  public: Type.Optional(Type.Boolean()),
  expires_at: Type.Optional(Nullable(ISODate)),
  /** SDK ≥ 0.39 (`Checkpoint.base_model`, optional there). */
  base_model: Type.Optional(Nullable(Type.String())),
})
export type Checkpoint = Static<typeof Checkpoint>

export const TrainingRun = Type.Object({
  training_run_id: Type.String(),
  base_model: Type.String(),
  model_owner: Type.String(),
  is_lora: Type.Boolean(),
  corrupted: Type.Optional(Type.Boolean()),
  lora_rank: Type.Optional(Nullable(Type.Integer())),
  last_request_time: ISODate,
  last_checkpoint: Type.Optional(Nullable(Checkpoint)),
  last_sampler_checkpoint: Type.Optional(Nullable(Checkpoint)),
  user_metadata: Type.Optional(Nullable(StringMap)),
})
export type TrainingRun = Static<typeof TrainingRun>

export const AccessScope = Type.Union([Type.Literal('owned'), Type.Literal('accessible')], {
  default: 'owned',
})

export const Paging = (defaultLimit: number) => ({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: defaultLimit }),
  offset: Type.Integer({ minimum: 0, default: 0 }),
})
