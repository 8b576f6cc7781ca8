// Session routes (spec §3.4, §3.5, §3.24): create (idempotent per X-Idempotency-Key), heartbeat, and
// the REST listings of the caller's sessions.

import type { FastifyInstance } from 'fastify'
import {
  type CreateSessionRequest,
  CreateSessionRoute,
  GetSessionRoute,
  ListSessionsRoute,
  type SessionHeartbeatRequest,
  SessionHeartbeatRoute,
  SessionProjectRoute,
} from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'

const TESTED_SDK = /^0\.25\./

export default async function sessionRoutes(app: FastifyInstance): Promise<void> {
  const { sessions, training, samplers } = app.tuft

  app.post<{ Body: CreateSessionRequest }>(
    '/create_session',
    { schema: CreateSessionRoute },
    async (request) => {
      const body = request.body
      const key = request.headers['x-idempotency-key']
      const session = await sessions.create(
        userOf(request),
        {
          tags: body.tags,
          userMetadata: body.user_metadata ?? undefined,
          sdkVersion: body.sdk_version,
          projectId: body.project_id ?? undefined,
        },
        typeof key === 'string' ? key : undefined,
      )
      const untested = body.sdk_version !== undefined && !TESTED_SDK.test(body.sdk_version)
      return {
        session_id: session.id,
        type: 'create_session' as const,
        ...(untested
          ? { warning_message: `This server is tested with tinker 0.25.x; you run ${body.sdk_version}` }
          : {}),
      }
    },
  )

  app.post<{ Body: SessionHeartbeatRequest }>(
    '/session_heartbeat',
    { schema: SessionHeartbeatRoute, logLevel: 'warn' },
    async (request) => {
      await sessions.heartbeat(userOf(request), request.body.session_id)
      return { type: 'session_heartbeat' as const }
    },
  )

  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/sessions',
    { schema: ListSessionsRoute },
    async (request) => {
      const { limit, offset } = request.query
      const all = await sessions.list(userOf(request))
      return { sessions: all.slice(offset, offset + limit).map((s) => s.id) }
    },
  )

  app.get<{ Params: { session_id: string } }>(
    '/sessions/:session_id',
    { schema: GetSessionRoute },
    async (request) => {
      const user = userOf(request)
      const session = await sessions.get(user, request.params.session_id)
      const runs = (await training.listRuns(user)).filter((r) => r.sessionId === session.id)
      const owned = await samplers.listSamplers(user, session.id)
      return {
        training_run_ids: runs.sort((a, b) => a.modelSeqId - b.modelSeqId).map((r) => r.id),
        sampler_ids: owned.sort((a, b) => a.seqId - b.seqId).map((s) => s.id),
      }
    },
  )

  app.put<{ Params: { session_id: string }; Body: { project_id: string } }>(
    '/sessions/:session_id/project',
    { schema: SessionProjectRoute },
    async (request, reply) => {
      await sessions.setProject(userOf(request), request.params.session_id, request.body.project_id)
      return reply.code(204).send()
    },
  )
}
