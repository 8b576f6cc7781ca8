// The SDK's telemetry sink (spec §3.6): accepts any batch and answers exactly {"status":"accepted"},
// which stops the client from resending. Unhandled client exceptions are worth a log line.

import type { FastifyInstance } from 'fastify'
import { type TelemetryRequest, TelemetryRoute } from '../../core/wire/schemas.js'

export default async function telemetrySinkRoutes(app: FastifyInstance): Promise<void> {
  app.post<{ Body: TelemetryRequest }>(
    '/telemetry',
    { schema: TelemetryRoute, logLevel: 'warn' },
    async (request) => {
      for (const event of request.body?.events ?? []) {
        const e = event as { event?: unknown; error_type?: unknown; error_message?: unknown }
        if (e?.event === 'UNHANDLED_EXCEPTION') {
          request.log.info(
            { session: request.body.session_id, errorType: e.error_type, message: e.error_message },
            'client reported an exception',
          )
        }
      }
      return { status: 'accepted' as const }
    },
  )
}
