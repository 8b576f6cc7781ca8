// Session trace export (spec §3.24, SDK export_session_trace / `tinker session export-trace`): the
// owner asks for an export and gets a signed, self-authorising link to the session's timeline at once
// (it is built from memory when fetched, so it is never 'pending').

import type { FastifyInstance } from 'fastify'
import { SessionTraceExportRoute } from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'
import { linkBaseUrl } from '../base-url.js'

/** How long a trace link stays valid (the SDK tells its users about an hour). */
const TRACE_LINK_MS = 60 * 60 * 1000

export default async function sessionTraceRoutes(app: FastifyInstance): Promise<void> {
  const { sessionTraces } = app.tuft

  app.get<{ Params: { session_id: string } }>(
    '/sessions/:session_id/trace_export',
    { schema: SessionTraceExportRoute },
    async (request) => {
      const token = await sessionTraces.link(
        userOf(request),
        request.params.session_id,
        Date.now() + TRACE_LINK_MS,
      )
      return { status: 'ready' as const, url: `${linkBaseUrl(app)}/api/v1/session_traces/${token}` }
    },
  )

  // The signed link itself: no X-API-Key (the CLI downloads it with a plain GET).
  app.get<{ Params: { token: string } }>(
    '/session_traces/:token',
    // Its URL is a bearer credential for an hour: keep it out of the request log.
    { config: { public: true }, logLevel: 'warn' },
    async (request, reply) => {
      const trace = await sessionTraces.open(request.params.token)
      const filename = `${trace.otherData.session_id}.json`.replace(/[^A-Za-z0-9._-]/g, '_')
      return reply
        .type('application/json')
        .header('content-disposition', `attachment; filename="${filename}"`)
        .send(trace)
    },
  )
}
