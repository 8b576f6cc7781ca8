// Request parsers (spec §1.5, §1.11): JSON that tolerates the SDK's empty bodies with a JSON content type
// (publish, unpublish, delete), raw buffers for protobuf bodies on the routes that take them
// (forward_backward), and finite numbers in query strings. The body size limit itself is the server's
// bodyLimit (config server.body_limit_bytes).

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { tuftError } from '../core/errors.js'

export const PROTOBUF_TYPES = ['application/x-protobuf', 'application/protobuf']

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes a protobuf body (spec §1.5: only forward_backward); elsewhere protobuf is 415. */
    protobuf?: boolean
  }
}

async function contentParsersPlugin(app: FastifyInstance): Promise<void> {
  const strictJson = app.getDefaultJsonParser('error', 'error')
  // The Tinker API is JSON and protobuf only: other media types are 415.
  app.removeContentTypeParser(['application/json', 'text/plain'])
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, undefined)
      return
    }
    strictJson(request, body as string, done)
  })
  app.addContentTypeParser(PROTOBUF_TYPES, { parseAs: 'buffer' }, (request, body, done) => {
    // A Buffer would pass a JSON route's object schema, so e.g. create_session would accept protobuf bytes.
    if (request.routeOptions.config?.protobuf) done(null, body)
    else
      done(
        tuftError(
          'TUFT_UNSUPPORTED_MEDIA_TYPE',
          `${request.method} ${request.url.split('?')[0]} takes a JSON body (Content-Type: application/json)`,
        ),
      )
  })

  // Ajv coerces `Infinity` or `1e400` in a query string to the number Infinity and then skips its range
  // checks (minimum, maximum) for non-finite numbers, so no schema can refuse them: this hook runs
  // after validation and does.
  app.addHook('preHandler', async (request) => {
    for (const [name, value] of Object.entries((request.query as Record<string, unknown>) ?? {})) {
      if (typeof value === 'number' && !Number.isFinite(value))
        throw tuftError('TUFT_BAD_REQUEST', `Invalid request: querystring/${name} must be a finite number`)
    }
  })
}

export default fp(contentParsersPlugin, { name: 'tuft-content-parsers', fastify: '5.x' })
