// The limits plugin: the per-user limits of config `limits:` and the memory budget of training
// (server.memory_budget_bytes, by default 80% of the machine's memory), decided by core's LimitsService.

import { totalmem } from 'node:os'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { LimitsService } from '../core/services/limits.js'

declare module 'fastify' {
  interface FastifyInstance {
    limits: LimitsService
  }
}

/** What the training estimates may book when the budget is not configured: room is left for the rest. */
const DEFAULT_MEMORY_FRACTION = 0.8

async function limitsPlugin(app: FastifyInstance): Promise<void> {
  const config = app.tuftConfig
  app.decorate(
    'limits',
    new LimitsService({
      spec: config.limits,
      store: app.store,
      sessionExpiryMs: config.server.session_expiry_seconds * 1000,
      memoryBudgetBytes:
        config.server.memory_budget_bytes ?? Math.floor(DEFAULT_MEMORY_FRACTION * totalmem()),
      log: app.log as unknown as Logger,
    }),
  )
}

export default fp(limitsPlugin, {
  name: 'tuft-limits',
  fastify: '5.x',
  dependencies: ['tuft-config', 'tuft-persistence'],
})
