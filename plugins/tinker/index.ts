// The Tinker API under /api/v1 (spec §3): one route plugin per resource, registered in one list.

import type { FastifyInstance } from 'fastify'
import checkpointRoutes from './checkpoints.js'
import clientConfigRoutes from './client-config.js'
import futureRoutes from './futures.js'
import healthRoutes from './health.js'
import modelRoutes from './models.js'
import retrieveFuturesRoutes from './retrieve-futures.js'
import runMetricsRoutes from './run-metrics.js'
import samplingRoutes from './sampling.js'
import sessionTraceRoutes from './session-traces.js'
import sessionRoutes from './sessions.js'
import telemetrySinkRoutes from './telemetry.js'
import trainingRoutes from './training.js'
import trainingRunRoutes from './training-runs.js'

export const API_PREFIX = '/api/v1'

export default async function tinkerApi(app: FastifyInstance): Promise<void> {
  for (const routes of [
    clientConfigRoutes,
    healthRoutes,
    sessionRoutes,
    sessionTraceRoutes,
    telemetrySinkRoutes,
    modelRoutes,
    trainingRoutes,
    samplingRoutes,
    futureRoutes,
    retrieveFuturesRoutes,
    trainingRunRoutes,
    runMetricsRoutes,
    checkpointRoutes,
  ]) {
    await app.register(routes)
  }
}
