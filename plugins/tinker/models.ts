// Training-run lifecycle routes (spec §3.9-3.11): create_model and unload_model answer futures at once;
// get_info answers from metadata (it feeds the SDK's client-side tokenizer loading).

import type { FastifyInstance } from 'fastify'
import { checkOptimizerConfig } from '../../core/wire/optimizer.js'
import {
  type CreateModelRequest,
  CreateModelRoute,
  GetInfoRoute,
  type ModelIdRequest,
  UnloadModelRoute,
} from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'
import { traceContextOf } from '../telemetry/http.js'
import { routeToRunHolder } from './run-router.js'

export default async function modelRoutes(app: FastifyInstance): Promise<void> {
  const { training } = app.tuft
  app.post<{ Body: CreateModelRequest }>('/create_model', { schema: CreateModelRoute }, async (request) => {
    checkOptimizerConfig(request.body.optimizer_config)
    return training.createModel(userOf(request), request.body, traceContextOf(request))
  })
  app.post<{ Body: ModelIdRequest }>('/get_info', { schema: GetInfoRoute }, async (request) =>
    training.getInfo(userOf(request), request.body.model_id),
  )
  app.post<{ Body: ModelIdRequest }>(
    '/unload_model',
    {
      schema: UnloadModelRoute,
      preHandler: routeToRunHolder(app, (request) => (request.body as ModelIdRequest).model_id),
    },
    async (request) => training.unloadModel(userOf(request), request.body.model_id, traceContextOf(request)),
  )
}
