// GET /api/v1/admin/status (operators only, like /api/v1/admin/usage): each served model's state, the
// work waiting in its training and sampling queues and how busy its engines were (plugins/server-load.ts).

import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { tuftError } from '../core/errors.js'
import { isOperator, userOf } from './auth.js'

const RoleLoad = Type.Object({ queue_depth: Type.Integer(), busy_fraction: Type.Number() })

export const AdminStatusRoute = {
  response: {
    200: Type.Object({
      models: Type.Array(
        Type.Object({
          model_name: Type.String(),
          state: Type.Union([Type.Literal('loading'), Type.Literal('ready'), Type.Literal('failed')]),
          training: RoleLoad,
          sampling: RoleLoad,
        }),
      ),
    }),
  },
}

async function adminStatusPlugin(app: FastifyInstance): Promise<void> {
  app.get('/api/v1/admin/status', { schema: AdminStatusRoute }, async (request) => {
    const user = userOf(request)
    if (!isOperator(app.tuftConfig, user)) {
      throw tuftError(
        'TUFT_FORBIDDEN',
        `User '${user}' may not read the server's status (telemetry.operators)`,
      )
    }
    return {
      models: app.models.list().map((host) => ({
        model_name: host.name,
        state: host.state,
        training: app.serverLoad.of(host.name, 'training'),
        sampling: app.serverLoad.of(host.name, 'sampling'),
      })),
    }
  })
}

export default fp(adminStatusPlugin, {
  name: 'tuft-admin-status',
  fastify: '5.x',
  dependencies: ['tuft-auth', 'tuft-engines', 'tuft-server-load'],
})
