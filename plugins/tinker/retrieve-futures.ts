// retrieve_futures (SDK ≥ 0.26, spec sdk-after-0.25.md §2): one long-poll per (sampler, cloned client)
// that reports which of its sample requests completed since the client's cursor; the payloads are then
// fetched through retrieve_future. Where the feed is not offered (shared or durable store) the call is
// refused with a 400 naming the alternative, and client/config never advertises it.

import type { FastifyInstance } from 'fastify'
import { tuftError } from '../../core/errors.js'
import { type FuturesRetrieveRequest, RetrieveFuturesRoute } from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'

export default async function retrieveFuturesRoutes(app: FastifyInstance): Promise<void> {
  const { completions, samplers } = app.tuft
  const longPollMs = app.tuftConfig.server.long_poll_timeout_ms
  // On shutdown, held polls answer at once instead of delaying the close by a long-poll.
  const closing = new AbortController()
  app.addHook('preClose', async () => closing.abort())
  app.post<{ Body: FuturesRetrieveRequest }>(
    '/retrieve_futures',
    { schema: RetrieveFuturesRoute },
    async (request, reply) => {
      if (!completions) {
        throw tuftError(
          'TUFT_BAD_REQUEST',
          'retrieve_futures is not offered by this server (its persistence is shared or durable); poll each request with retrieve_future',
        )
      }
      const { target, prev_cursor, timeout } = request.body
      // 404 for unknown samplers and other users' (no existence leak).
      const sampler = await samplers.getSampler(userOf(request), target.sampling_session_id)
      const gone = new AbortController()
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.abort()
      }
      reply.raw.once('close', onClose)
      const waitMs = Math.min(
        longPollMs,
        timeout === undefined || timeout === null ? longPollMs : timeout * 1000,
      )
      const page = await completions.poll(
        sampler,
        target.cloned_sampler_id,
        prev_cursor,
        waitMs,
        AbortSignal.any([gone.signal, closing.signal]),
      )
      reply.raw.off('close', onClose)
      return page
    },
  )
}
