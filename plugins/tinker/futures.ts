// retrieve_future (spec §4.2-4.5): long-polls a future for up to long_poll_timeout_ms, then answers
// try_again; failures are 200 {"error","category"}; tensor results are protobuf when the poll accepts
// it; futures lost in a restart are 410 (the error handler maps TUFT_FUTURE_EXPIRED).

import type { FastifyInstance } from 'fastify'
import { encodeResult } from '../../core/services/results.js'
import { type RetrieveFutureRequest, RetrieveFutureRoute } from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'

const JSON_TYPE = 'application/json; charset=utf-8'

export default async function futureRoutes(app: FastifyInstance): Promise<void> {
  const { futures } = app.tuft

  /** spec §4.8: work waiting for a model that is still loading is reported as paused for capacity. */
  const queueState = (id: string) => {
    const model = futures.modelNameOf(id)
    const host = model === undefined ? undefined : app.models.list().find((h) => h.name === model)
    return host?.state === 'loading'
      ? { queue_state: 'paused_capacity', queue_state_reason: `Model ${host.name} is still loading` }
      : { queue_state: 'active' }
  }
  const longPollMs = app.tuftConfig.server.long_poll_timeout_ms
  // On shutdown, held polls answer try_again at once instead of delaying the close by a long-poll.
  const closing = new AbortController()
  app.addHook('preClose', async () => closing.abort())
  app.post<{ Body: RetrieveFutureRequest }>(
    '/retrieve_future',
    { schema: RetrieveFutureRoute },
    async (request, reply) => {
      const id = request.body.request_id
      const gone = new AbortController()
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.abort()
      }
      reply.raw.once('close', onClose)
      const signal = AbortSignal.any([gone.signal, closing.signal])
      const record = await futures.wait(id, userOf(request), longPollMs, signal)
      reply.raw.off('close', onClose)
      // JSON answers are serialized here: the response schema is a union that would otherwise strip fields.
      if (record.state === 'pending' || record.state === 'running') {
        return reply
          .type(JSON_TYPE)
          .send(JSON.stringify({ type: 'try_again', request_id: id, ...queueState(id) }))
      }
      if (record.state === 'failed') {
        const error = record.error ?? { message: 'Unknown failure', category: 'unknown' }
        return reply.type(JSON_TYPE).send(JSON.stringify({ error: error.message, category: error.category }))
      }
      const acceptsProtobuf = (request.headers.accept ?? '').includes('application/x-protobuf')
      const encoded = encodeResult(record.result, acceptsProtobuf)
      if (encoded.contentType === 'application/x-protobuf')
        return reply.type(encoded.contentType).send(encoded.body)
      return reply.type(JSON_TYPE).send(JSON.stringify(encoded.body))
    },
  )
}
