// Errors of the OpenAI-compatible API in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
// mapped from the coded errors of core/errors.ts (code = the coded error's name) and from Fastify's own
// (schema validation names the offending parameter). Registered on the OAI routes only.

import type { FastifyError, FastifyInstance } from 'fastify'
import { isTuftError } from '../../core/errors.js'

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

export function toOaiError(err: FastifyError): { status: number; body: { error: OaiError } } {
  let status = 500
  let message = 'Internal server error'
  let code = 'TUFT_INTERNAL'
  let param: string | null = null
  if (isTuftError(err)) {
    status = err.statusCode
    message = err.message
    code = err.code
  } else if (err.validation) {
    status = 400
    message = `Invalid request: ${err.message}`
    code = 'TUFT_BAD_REQUEST'
    const first = err.validation[0]
    const path = first?.instancePath.replace(/^\//, '').split('/')[0]
    param = path || ((first?.params as { missingProperty?: string })?.missingProperty ?? null)
  } else if ((err.statusCode ?? 500) < 500) {
    // Malformed JSON, a body too large and other client errors Fastify detected.
    status = err.statusCode === 409 ? 400 : (err.statusCode ?? 400)
    message = err.message
    code = status === 413 ? 'TUFT_PAYLOAD_TOO_LARGE' : 'TUFT_BAD_REQUEST'
  }
  return { status, body: { error: { message, type: typeOf(status), param, code } } }
}

/** Sends every error of this encapsulated context in OpenAI's shape (5xx logged at error, 4xx at info). */
export function useOaiErrors(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, body } = toOaiError(err)
    if (status >= 500) request.log.error({ err }, 'request failed')
    else request.log.info({ code: body.error.code, status, detail: body.error.message }, 'request rejected')
    if (status === 429) reply.header('retry-after', '1')
    return reply.code(status).type('application/json; charset=utf-8').send(body)
  })
}
