// The error handler (spec §1.8, §1.9): every error becomes `{"detail": ..., "code": ...}` with the
// coded status; Fastify's own errors (validation, body parsing, size, media type) map to 4xx with a
// body and Content-Length, never 409/5xx for user mistakes. 5xx are logged at error, 4xx at info; an
// internal fault's message (which may name server paths) is only logged, under the correlation id the
// client gets (core/errors.ts clientError).

import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { clientError, isTuftError } from '../core/errors.js'

interface Mapped {
  status: number
  detail: string
  code: string
  /** Set when the detail was withheld (an internal fault): the log line carries the same id. */
  correlationId?: string
}

function mapError(err: FastifyError): Mapped {
  if (!isTuftError(err)) {
    if (err.validation) {
      return { status: 400, detail: `Invalid request: ${err.message}`, code: 'TUFT_BAD_REQUEST' }
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return { status: 413, detail: 'Request body is too large', code: 'TUFT_PAYLOAD_TOO_LARGE' }
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return { status: err.statusCode ?? 415, detail: err.message, code: 'TUFT_UNSUPPORTED_MEDIA_TYPE' }
    }
    const status = err.statusCode ?? 500
    if (status >= 400 && status < 500) {
      // Body parsing (malformed JSON) and other client errors Fastify detected.
      return { status: status === 409 ? 400 : status, detail: err.message, code: 'TUFT_BAD_REQUEST' }
    }
  }
  const shown = clientError(err)
  return {
    status: shown.status,
    detail: shown.message,
    code: shown.code,
    ...(shown.correlationId === null ? {} : { correlationId: shown.correlationId }),
  }
}

async function errorHandlerPlugin(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const mapped = mapError(err)
    if (mapped.status >= 500)
      request.log.error({ err, correlationId: mapped.correlationId }, 'request failed')
    else
      request.log.info(
        { code: mapped.code, status: mapped.status, detail: mapped.detail },
        'request rejected',
      )
    // Busy (429) and unavailable (503: a model loading, the store not answering) are worth retrying.
    if (mapped.status === 429 || mapped.status === 503) reply.header('retry-after', '1')
    return reply
      .code(mapped.status)
      .type('application/json; charset=utf-8')
      .send({ detail: mapped.detail, code: mapped.code })
  })
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      detail: `No route for ${request.method} ${request.url.split('?')[0]}`,
      code: 'TUFT_NOT_FOUND',
    }),
  )
}

export default fp(errorHandlerPlugin, { name: 'tuft-error-handler', fastify: '5.x' })
