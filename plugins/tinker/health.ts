// Health and capabilities (spec §3.7, §3.8): an unauthenticated liveness probe that reports a store not
// answering as `degraded`, and the list of base models clients may train and sample.

import type { FastifyInstance } from 'fastify'
import { GetServerCapabilitiesRoute, HealthzRoute } from '../../core/wire/schemas.js'

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', { schema: HealthzRoute, config: { public: true }, logLevel: 'warn' }, async () => {
    const store = (await app.store.health?.()) ?? { ok: true }
    return store.ok ? { status: 'ok' as const } : { status: 'degraded' as const, store }
  })
  app.get('/get_server_capabilities', { schema: GetServerCapabilitiesRoute }, async () => ({
    supported_models: app.models.list().map((h) => {
      const context = h.maxContext()
      return context > 0 ? { model_name: h.name, max_context_length: context } : { model_name: h.name }
    }),
  }))
}
