// seq_id-ordered training routes (spec §3.12-3.16, §4.6): forward_backward (protobuf, optional zstd),
// optim_step, save_weights, load_weights, save_weights_for_sampler. Each request is tracked from
// arrival to answer so that a gap in a run's seq_ids is held only while it might still be filled.

import type { FastifyInstance, FastifyRequest } from 'fastify'
import { tuftError } from '../../core/errors.js'
import type { Submission } from '../../core/services/training.js'
import { adamParamsOf, checkOptimizerConfig } from '../../core/wire/optimizer.js'
import { type ForwardBackwardBody, readForwardBackwardBody } from '../../core/wire/proto.js'
import {
  type LoadWeightsRequest,
  LoadWeightsRoute,
  type OptimStepRequest,
  OptimStepRoute,
  type SaveWeightsForSamplerRequest,
  SaveWeightsForSamplerRoute,
  type SaveWeightsRequest,
  SaveWeightsRoute,
} from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'
import { PROTOBUF_TYPES } from '../content-parsers.js'
import { traceContextOf } from '../telemetry/http.js'
import { routeToRunHolder } from './run-router.js'

declare module 'fastify' {
  interface FastifyRequest {
    submission: Submission | null
    /** forward_backward's decoded body, read before routing (its model_id says which run it is for). */
    forwardBackward: ForwardBackwardBody | null
  }
}

/** The body is protobuf, so only the responses are described by schema. */
const ForwardBackwardRoute = { response: OptimStepRoute.response }

export default async function trainingRoutes(app: FastifyInstance): Promise<void> {
  const { training } = app.tuft
  const maxBytes = app.tuftConfig.server.body_limit_bytes
  app.decorateRequest('submission', null)
  app.decorateRequest('forwardBackward', null)
  app.addHook('onRequest', async (request) => {
    request.submission = training.beginSubmission(userOf(request), traceContextOf(request))
  })
  const settle = async (request: { submission: Submission | null }) => request.submission?.settle()
  app.addHook('onResponse', settle)
  app.addHook('onRequestAbort', settle)

  /** Runs held by another server process (shared store): relayed to it before the handler runs. */
  const toHolder = routeToRunHolder(app, (request) => (request.body as { model_id: string }).model_id)

  const readBody = async (request: FastifyRequest) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (!PROTOBUF_TYPES.includes(type) || !Buffer.isBuffer(request.body)) {
      throw tuftError(
        'TUFT_UNSUPPORTED_MEDIA_TYPE',
        'forward_backward takes a protobuf ForwardBackwardRequest body (Content-Type: application/x-protobuf)',
      )
    }
    const encoding = request.headers['content-encoding']
    request.forwardBackward = readForwardBackwardBody(
      request.body,
      typeof encoding === 'string' ? encoding : undefined,
      maxBytes,
    )
  }
  app.post(
    '/forward_backward',
    {
      schema: ForwardBackwardRoute,
      config: { protobuf: true },
      preHandler: [readBody, routeToRunHolder(app, (request) => request.forwardBackward!.request.modelId)],
    },
    async (request) =>
      training.forwardBackward(userOf(request), request.forwardBackward!, request.submission!),
  )
  app.post<{ Body: OptimStepRequest }>(
    '/optim_step',
    { schema: OptimStepRoute, preHandler: toHolder },
    async (request) => {
      const { adam_params: _0, optim_params: _1, ...step } = request.body
      return training.optimStep(
        userOf(request),
        { ...step, adam_params: adamParamsOf(request.body) },
        request.submission!,
      )
    },
  )
  app.post<{ Body: SaveWeightsRequest }>(
    '/save_weights',
    { schema: SaveWeightsRoute, preHandler: toHolder },
    async (request) => training.saveWeights(userOf(request), request.body, request.submission!),
  )
  app.post<{ Body: LoadWeightsRequest }>(
    '/load_weights',
    { schema: LoadWeightsRoute, preHandler: toHolder },
    async (request) => {
      checkOptimizerConfig(request.body.optimizer_config)
      return training.loadWeights(userOf(request), request.body, request.submission!)
    },
  )
  app.post<{ Body: SaveWeightsForSamplerRequest }>(
    '/save_weights_for_sampler',
    { schema: SaveWeightsForSamplerRoute, preHandler: toHolder },
    async (request) => training.saveWeightsForSampler(userOf(request), request.body, request.submission!),
  )
}
