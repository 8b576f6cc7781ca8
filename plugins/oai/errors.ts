// Errors of the OpenAI-compatible API in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
// mapped from the coded errors of core/errors.ts (code = the coded error's name) and from Fastify's own
// (schema validation names the offending parameter). Registered on the OAI routes only.

import type { FastifyError, FastifyInstance } from 'fastify'
import { clientError, isTuftError } from '../../core/errors.js'

export interface OaiError {
  message: string
  type: string
  param: string | null
  code: string
}

/** OpenAI's error type for an HTTP status. */
function typeOf(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error'
    case 403:
      return 'permission_error'
    case 404:
      return 'not_found_error'
    case 429:
      return 'rate_limit_error'
    default:
      return status >= 500 ? 'server_error' : 'invalid_request_error'
  }
}

export function toOaiError(err: FastifyError): {
  status: number
  body: { error: OaiError }
  correlationId: string | null
} {
  if (!isTuftError(err) && err.validation) {
    const first = err.validation[0]
    const path = first?.instancePath.replace(/^\//, '').split('/')[0]
    const param = path || ((first?.params as { missingProperty?: string })?.missingProperty ?? null)
    const message = `Invalid request: ${err.message}`
    return {
      status: 400,
      body: { error: { message, type: typeOf(400), param, code: 'TUFT_BAD_REQUEST' } },
      correlationId: null,
    }
  }
  if (!isTuftError(err) && (err.statusCode ?? 500) < 500) {
    // Malformed JSON, a body too large and other client errors Fastify detected.
    const status = err.statusCode === 409 ? 400 : (err.statusCode ?? 400)
    const code = status === 413 ? 'TUFT_PAYLOAD_TOO_LARGE' : 'TUFT_BAD_REQUEST'
    return {
      status,
      body: { error: { message: err.message, type: typeOf(status), param: null, code } },
      correlationId: null,
    }
  }
  // Coded errors and internal faults; the latter show only a correlation id (core/errors.ts).
  const shown = clientError(err)
  return {
    status: shown.status,
    body: {
      error: { message: shown.message, type: typeOf(shown.status), param: null, code: shown.code },
    },
    correlationId: shown.correlationId,
  }
}

/** Sends every error of this encapsulated context in OpenAI's shape (5xx logged at error, 4xx at info). */
export function useOaiErrors(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body, correlationId } = toOaiError(err)
    if (status >= 500) request.log.error({ err, correlationId }, 'request failed')
    else request.log.info({ code: body.error.code, status, detail: body.error.message }, 'request rejected')
    if (status === 429) reply.header('retry-after', '1')
    return reply.code(status).type('application/json; charset=utf-8').send(body)
  })
}
