// Body parsers (spec §1.5, §1.11): JSON that tolerates the SDK's empty bodies with a JSON content type
// (publish, unpublish, delete), and raw buffers for protobuf forward_backward bodies. The body size
// limit itself is the server's bodyLimit (config server.body_limit_bytes).

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export const PROTOBUF_TYPES = ['application/x-protobuf', 'application/protobuf']

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
  app.addContentTypeParser(PROTOBUF_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
}

export default fp(contentParsersPlugin, { name: 'tuft-content-parsers', fastify: '5.x' })
