// GET /health (vLLM's): 200 with an empty body once every sampling model is loaded, 503 before that or
// after one failed to load. Unauthenticated, for probes and for tuft's own vLLM provider.

import type { FastifyInstance } from 'fastify'

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/health', { config: { public: true }, logLevel: 'warn' }, async (_request, reply) => {
    const ready = app.models.list().every((h) => !h.supports('sampling') || h.state === 'ready')
    return reply.code(ready ? 200 : 503).send()
  })
}
