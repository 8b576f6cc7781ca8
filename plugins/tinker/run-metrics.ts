// GET /api/v1/training_runs/<id>/metrics (issue #15, not part of the Tinker spec): a training run's
// metrics history — one point per forward, forward_backward and optim_step, newest
// server.run_metrics_history kept — for loss curves. Owner only: another user's run is 404. Pages by
// position: `after` is the last `n` the caller has, so a poll fetches only what is new.

import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { userOf } from '../auth.js'

const MetricsQuery = Type.Object({
  after: Type.Integer({ minimum: -1, default: -1, description: 'return points with n greater than this' }),
  limit: Type.Optional(
    Type.Integer({ minimum: 0, description: 'at most this many points (0: the summary only)' }),
  ),
})

const Point = Type.Object({
  n: Type.Integer({ description: "position in the run's history, from 0" }),
  kind: Type.Union([Type.Literal('forward'), Type.Literal('forward_backward'), Type.Literal('optim_step')]),
  step: Type.Integer({ description: 'optimizer steps taken: before a pass, after an optim_step' }),
  seq_id: Type.Integer(),
  time: Type.String({ format: 'date-time' }),
  metrics: Type.Record(Type.String(), Type.Number()),
})

export const RunMetricsRoute = {
  params: Type.Object({ training_run_id: Type.String() }),
  querystring: MetricsQuery,
  response: {
    200: Type.Object({
      training_run_id: Type.String(),
      created_time: Type.String({ format: 'date-time' }),
      last_step: Type.Integer({ description: 'the step of the newest point; 0 before any' }),
      points: Type.Array(Point),
    }),
  },
}

export default async function runMetricsRoutes(app: FastifyInstance): Promise<void> {
  const { training } = app.tuft
  app.get<{ Params: { training_run_id: string }; Querystring: Static<typeof MetricsQuery> }>(
    '/training_runs/:training_run_id/metrics',
    { schema: RunMetricsRoute },
    async (request) => {
      const { after, limit } = request.query
      const { run, points } = await training.metrics(userOf(request), request.params.training_run_id)
      const from = points.findIndex((p) => p.n > after)
      const page = from < 0 ? [] : points.slice(from, limit === undefined ? undefined : from + limit)
      return {
        training_run_id: run.id,
        created_time: new Date(run.createdAt).toISOString(),
        last_step: points.at(-1)?.step ?? 0,
        points: page.map(({ at, ...p }) => ({ ...p, time: new Date(at).toISOString() })),
      }
    },
  )
}
