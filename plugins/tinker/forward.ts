// Several servers on one Redis: a training request for a run that another live process holds is relayed
// to that process (its base URL is in the run's lease). When the holder does not answer, the request
// waits until the holder's lease lapses and is then served here, where the run is recovered from its
// durable state. Installed as the error handler of the training route plugins; other errors go on to
// the app's error handler.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { tuftError } from '../../core/errors.js'
import { type Ownership, RunElsewhere } from '../../core/services/ownership.js'

/** Marks a relayed request, so that it is never relayed twice (no loops while ownership moves). */
export const FORWARDED_HEADER = 'x-tuft-forwarded'

const RELAYED_REQUEST_HEADERS = ['x-api-key', 'authorization', 'content-type', 'content-encoding', 'accept']
const RELAY_TIMEOUT_MS = 60_000
const LAPSE_POLL_MS = 200

function rawBody(request: FastifyRequest): Buffer | string | undefined {
  const body = request.body
  if (body === undefined || body === null) return undefined
  return Buffer.isBuffer(body) ? body : JSON.stringify(body)
}

function headersFor(request: FastifyRequest): Record<string, string> {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1' }
  for (const name of RELAYED_REQUEST_HEADERS) {
    const value = request.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  return headers
}

/** Sends the request to the holder and copies its answer; rejects when the holder cannot be reached. */
async function relay(request: FastifyRequest, reply: FastifyReply, ownerUrl: string): Promise<FastifyReply> {
  const body = rawBody(request)
  const res = await fetch(`${ownerUrl}${request.url}`, {
    method: request.method,
    headers: headersFor(request),
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(RELAY_TIMEOUT_MS),
  })
  const payload = Buffer.from(await res.arrayBuffer())
  const type = res.headers.get('content-type')
  if (type) reply.header('content-type', type)
  return reply.code(res.status).send(payload)
}

/** Waits until the unreachable holder's lease is gone or held by someone else; false after ttl + 1 s. */
async function holderGone(ownership: Ownership, runId: string, deadUrl: string): Promise<boolean> {
  const deadline = Date.now() + ownership.ttlMs + 1000
  while (Date.now() < deadline) {
    if ((await ownership.holderUrl(runId)) !== deadUrl) return true
    await new Promise((resolve) => setTimeout(resolve, LAPSE_POLL_MS))
  }
  return false
}

export function forwardToOwner(app: FastifyInstance) {
  const { ownership } = app.tuft
  return async (err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (!(err instanceof RunElsewhere)) throw err
    if (request.headers[FORWARDED_HEADER] !== undefined) {
      throw tuftError('TUFT_UNAVAILABLE', `Training run '${err.runId}' is changing servers; retry shortly`)
    }
    try {
      return await relay(request, reply, err.ownerUrl)
    } catch (cause) {
      request.log.warn(
        { run: err.runId, owner: err.ownerUrl, err: cause },
        'the server holding the run does not answer; waiting for its lease to lapse',
      )
    }
    if (!(await holderGone(ownership, err.runId, err.ownerUrl))) {
      throw tuftError(
        'TUFT_UNAVAILABLE',
        `Training run '${err.runId}' is held by ${err.ownerUrl}, which does not answer; retry shortly`,
      )
    }
    // Serve it here now: the route runs again, and finds the run free to take over (or relays once more).
    const body = rawBody(request)
    const res = await app.inject({
      method: 'POST',
      url: request.url,
      headers: { ...request.headers, [FORWARDED_HEADER]: '1' },
      ...(body === undefined ? {} : { payload: body }),
    })
    const type = res.headers['content-type']
    if (typeof type === 'string') reply.header('content-type', type)
    return reply.code(res.statusCode).send(res.rawPayload)
  }
}
