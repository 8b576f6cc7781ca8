// Usage REST endpoints: the caller's own usage and standing against their limits (`quota`), every user's
// (and the training memory budget) for operators, and the billing usage events of spec §3.25. Metering
// (plugins/telemetry/usage.ts) runs whether or not telemetry is on. Operators are decided by
// plugins/auth.ts (isOperator); limits by core/services/limits.ts, when the limits plugin is registered.

import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { TuftConfig } from '../config/schema.js'
import { tuftError } from '../core/errors.js'
import type { EventBus } from '../core/events.js'
import type { LimitsService } from '../core/services/limits.js'
import { isOperator } from './auth.js'
import { UsageMeter } from './telemetry/usage.js'

declare module 'fastify' {
  interface FastifyInstance {
    usage: UsageMeter
  }
}

export interface UsagePluginOptions {
  /** An existing meter (tests use a clock they control). */
  meter?: UsageMeter
}

const Totals = Type.Object({
  training_tokens: Type.Number(),
  prefill_tokens: Type.Number(),
  sampled_tokens: Type.Number(),
  checkpoint_bytes: Type.Number(),
  checkpoints_saved: Type.Number(),
  storage_gigabyte_hours: Type.Number(),
})
const Standing = Type.Object({
  limit: Type.Union([Type.Number(), Type.Null()]),
  used: Type.Optional(Type.Number()),
})
const Quota = Type.Object({
  weight: Type.Number(),
  max_training_runs: Standing,
  max_lora_rank: Standing,
  max_sessions: Standing,
  max_pending_requests: Standing,
  max_sampling_requests_queued: Standing,
  max_checkpoint_bytes: Standing,
  max_tokens_per_request: Standing,
})
const UserUsage = Type.Object({
  user_id: Type.String(),
  totals: Totals,
  models: Type.Record(Type.String(), Totals),
  quota: Type.Optional(Quota),
})

export const GetUsageSchema = { response: { 200: UserUsage } }
export const GetAdminUsageSchema = {
  response: {
    200: Type.Object({
      users: Type.Array(UserUsage),
      memory: Type.Optional(Type.Object({ budget_bytes: Type.Number(), booked_bytes: Type.Number() })),
    }),
  },
}

const strict = { additionalProperties: false } as const
const EventInfo = Type.Union([
  Type.Object({ type: Type.Literal('training'), token_count: Type.Number() }, strict),
  Type.Object(
    { type: Type.Literal('sampling_prefill'), cached: Type.Boolean(), token_count: Type.Number() },
    strict,
  ),
  Type.Object({ type: Type.Literal('sampling_sample'), token_count: Type.Number() }, strict),
  Type.Object({ type: Type.Literal('checkpoint'), count: Type.Number() }, strict),
  Type.Object({ type: Type.Literal('storage'), gigabyte_hours: Type.Number() }, strict),
])
const BillingQuery = Type.Object({
  starting_on: Type.Optional(Type.String({ description: 'ISO-8601 instant, inclusive' })),
  ending_before: Type.Optional(Type.String({ description: 'ISO-8601 instant, exclusive' })),
})
export const GetBillingEventsSchema = {
  querystring: BillingQuery,
  response: {
    200: Type.Object({
      data: Type.Array(
        Type.Object({
          bucket_start: Type.String(),
          bucket_end: Type.String(),
          base_model: Type.String(),
          user_id: Type.String(),
          user_name: Type.String(),
          session_id: Type.Union([Type.String(), Type.Null()]),
          project_id: Type.Union([Type.String(), Type.Null()]),
          event_info: EventInfo,
        }),
      ),
      sessions: Type.Record(
        Type.String(),
        Type.Object({ user_metadata: Type.Record(Type.String(), Type.String()) }),
      ),
    }),
  },
}

function instant(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback
  const ms = Date.parse(value)
  if (Number.isNaN(ms))
    throw tuftError('TUFT_BAD_REQUEST', `${name} must be an ISO-8601 date-time, got '${value}'`)
  return ms
}

async function usagePlugin(app: FastifyInstance, opts: UsagePluginOptions): Promise<void> {
  const config = app.getDecorator<TuftConfig>('tuftConfig')
  const meter = opts.meter ?? new UsageMeter()
  const stop = meter.observe(app.getDecorator<EventBus>('events'))
  app.decorate('usage', meter)
  app.addHook('onClose', async () => stop())

  // plugins/auth has authenticated every non-public route; its `userId` decorator names the caller.
  const caller = (request: FastifyRequest): string => {
    const user = (request as { userId?: string | null }).userId
    if (user === null || user === undefined) throw tuftError('TUFT_UNAUTHORIZED', 'Not authenticated')
    return user
  }

  const limits = app.hasDecorator('limits') ? app.getDecorator<LimitsService>('limits') : null
  const usageOf = async (user: string) => ({
    ...meter.user(user),
    ...(limits ? { quota: await limits.quota(user) } : {}),
  })

  app.get('/api/v1/usage', { schema: GetUsageSchema }, async (request) => usageOf(caller(request)))

  app.get('/api/v1/admin/usage', { schema: GetAdminUsageSchema }, async (request) => {
    const user = caller(request)
    if (!isOperator(config, user)) {
      throw tuftError('TUFT_FORBIDDEN', `User '${user}' may not read other users' usage (operators)`)
    }
    const users = new Set(meter.all().map((u) => u.user_id))
    for (const u of (await limits?.knownUsers()) ?? []) users.add(u)
    return {
      users: await Promise.all([...users].sort().map(usageOf)),
      ...(limits ? { memory: limits.memory() } : {}),
    }
  })

  app.get<{ Querystring: Static<typeof BillingQuery> }>(
    '/api/v1/billing/usage/events',
    { schema: GetBillingEventsSchema },
    async (request) => {
      const user = caller(request)
      const from = instant('starting_on', request.query.starting_on, 0)
      const to = instant('ending_before', request.query.ending_before, Number.POSITIVE_INFINITY)
      return meter.billing(user, from, to)
    },
  )
}

export default fp(usagePlugin, {
  name: 'tuft-usage',
  fastify: '5.x',
  dependencies: ['tuft-config', 'tuft-auth'],
})
