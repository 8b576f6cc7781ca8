// Sampling routes (spec §3.18-3.20): sampling sessions, asample (a future; 429 when the model's
// sampling queue is full) and sampler lookup.

import type { FastifyInstance } from 'fastify'
import { toWireSampler } from '../../core/domain/sampler.js'
import {
  ASampleRoute,
  type CreateSamplingSessionRequest,
  CreateSamplingSessionRoute,
  GetSamplerRoute,
  type SampleRequest,
} from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'
import { traceContextOf } from '../telemetry/http.js'

export default async function samplingRoutes(app: FastifyInstance): Promise<void> {
  const { sampling, samplers, completions } = app.tuft
  app.post<{ Body: CreateSamplingSessionRequest }>(
    '/create_sampling_session',
    { schema: CreateSamplingSessionRoute },
    async (request) => ({
      sampling_session_id: await samplers.createSession(userOf(request), request.body),
      type: 'create_sampling_session' as const,
    }),
  )
  app.post<{ Body: SampleRequest }>('/asample', { schema: ASampleRoute }, async (request) => {
    const future = await sampling.sample(userOf(request), request.body, traceContextOf(request))
    // sample() has checked that the sampler exists and is the caller's.
    completions?.submitted(future.request_id, request.body.sampling_session_id!, request.body.seq_id)
    return future
  })
  app.get<{ Params: { sampler_id: string } }>(
    '/samplers/:sampler_id',
    { schema: GetSamplerRoute },
    async (request) => toWireSampler(await samplers.getSampler(userOf(request), request.params.sampler_id)),
  )
}
