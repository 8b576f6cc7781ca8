// Several servers on one shared store (Redis): each training run is served by the process that holds its
// lease. Before a run-scoped route's handler runs, this hook decides where the request is served: here
// (this process holds the run, or takes it over now), or at the live holder, to which it is relayed as
// it came. A holder that does not answer is waited out until its lease lapses; the request is then
// served here. The handler itself never relays, and nothing runs twice.

import type { FastifyInstance, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import { tuftError } from '../../core/errors.js'
import type { Ownership } from '../../core/services/ownership.js'
import { userOf } from '../auth.js'

/** Marks a relayed request, so that it is never relayed twice (no loops while ownership moves). */
const FORWARDED_HEADER = 'x-tuft-forwarded'

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
async function relay(request: FastifyRequest, reply: FastifyReply, holderUrl: string): Promise<FastifyReply> {
  const body = rawBody(request)
  const res = await fetch(`${holderUrl}${request.url}`, {
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

function changingServers(runId: string, why: string): Error {
  return tuftError('TUFT_UNAVAILABLE', `Training run '${runId}' ${why}; retry shortly`)
}

/** A preHandler for routes that act on the run `runIdOf(request)` names (after body parsing and auth). */
export function routeToRunHolder(
  app: FastifyInstance,
  runIdOf: (request: FastifyRequest) => string,
): preHandlerAsyncHookHandler {
  const { training, ownership } = app.tuft
  return async (request, reply) => {
    if (!ownership.needed) return
    const runId = runIdOf(request)
    const user = userOf(request)
    const holder = await training.placement(user, runId)
    if (holder === null) return
    if (request.headers[FORWARDED_HEADER] !== undefined) throw changingServers(runId, 'is changing servers')
    try {
      return await relay(request, reply, holder)
    } catch (cause) {
      request.log.warn(
        { run: runId, holder, err: cause },
        'the server holding the run does not answer; waiting for its lease to lapse',
      )
    }
    if (!(await holderGone(ownership, runId, holder))) {
      throw changingServers(runId, `is held by ${holder}, which does not answer`)
    }
    const next = await training.placement(user, runId)
    if (next === null) return
    try {
      return await relay(request, reply, next)
    } catch {
      throw changingServers(runId, `moved to ${next}, which does not answer yet`)
    }
  }
}
