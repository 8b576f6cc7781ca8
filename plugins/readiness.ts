// GET /api/v1/readyz: readiness for load balancers and orchestrators. 200 once every model is loaded
// and each of its engines reports itself healthy (EngineHealth) and the store answers, 503 otherwise;
// the body says which.
// Public like /healthz, which stays a bare liveness answer.

import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'

const Health = Type.Object({ ok: Type.Boolean(), message: Type.Optional(Type.String()) })
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  models: Type.Array(
    Type.Object({
      model_name: Type.String(),
      state: Type.Union([Type.Literal('loading'), Type.Literal('ready'), Type.Literal('failed')]),
      training: Type.Optional(Health),
      sampling: Type.Optional(Health),
    }),
  ),
  store: Health,
})
export const ReadyzRoute = { response: { 200: Readiness, 503: Readiness } }

export default async function readinessRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/readyz',
    { schema: ReadyzRoute, config: { public: true }, logLevel: 'warn' },
    async (_, reply) => {
      const [store, ...models] = await Promise.all([
        app.store.health?.() ?? { ok: true },
        ...app.models.list().map(async (host) => ({ model_name: host.name, ...(await host.health()) })),
      ])
      const ready =
        store.ok &&
        models.every((m) => m.state === 'ready' && m.training?.ok !== false && m.sampling?.ok !== false)
      const body: Static<typeof Readiness> = { status: ready ? 'ready' : 'not_ready', models, store }
      return reply.code(ready ? 200 : 503).send(body)
    },
  )
}
