// The browser console at /console (issue #15): serves the page and its bundled assets
// (scripts/build-console.mjs → plugins/console/build/) from memory, and the same page for every path
// under /console so that its addresses can be bookmarked. The page holds no data and needs no key:
// it signs in with the user's API key and then calls the public APIs like any other client.

import { readdirSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'

export const CONSOLE_PATH = '/console'
const BUILD_DIR = new URL('./build/', import.meta.url).pathname

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

/** Scripts, styles and data only from this server; the page may not be framed (clickjacking). */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** Every built file by name, or null when the console was not built. */
function readBuild(): Map<string, Buffer> | null {
  try {
    return new Map(readdirSync(BUILD_DIR).map((name) => [name, readFileSync(join(BUILD_DIR, name))]))
  } catch {
    return null
  }
}

async function consolePlugin(app: FastifyInstance): Promise<void> {
  const files = readBuild()
  if (files === null || !files.has('index.html')) {
    app.log.warn({ dir: BUILD_DIR }, 'the console is not built (npm run build): /console answers 503')
  }
  const send = (reply: FastifyReply, name: string) => {
    const body = files?.get(name)
    if (body === undefined) return false
    reply.headers(SECURITY_HEADERS).type(TYPES[extname(name)] ?? 'application/octet-stream')
    // Asset names do not change between builds: revalidate rather than cache blindly.
    reply.header('cache-control', 'no-cache').send(body)
    return true
  }
  const page = async (_request: unknown, reply: FastifyReply) => {
    if (send(reply, 'index.html')) return reply
    return reply
      .code(503)
      .type('text/plain; charset=utf-8')
      .send('The console is not built. Run `npm run build` in the tuft directory and restart tuft.')
  }
  const routeOptions = { config: { public: true }, logLevel: 'warn' as const }
  app.get(CONSOLE_PATH, routeOptions, page)
  app.get<{ Params: { '*': string } }>(`${CONSOLE_PATH}/*`, routeOptions, async (request, reply) => {
    const tail = request.params['*']
    if (!tail.startsWith('assets/')) return page(request, reply)
    const name = tail.slice('assets/'.length)
    if (name.includes('/') || name === 'index.html' || !send(reply, name)) {
      return reply.code(404).type('text/plain; charset=utf-8').send('No such console asset')
    }
    return reply
  })
}

export default fp(consolePlugin, { name: 'tuft-console', fastify: '5.x', dependencies: ['tuft-auth'] })
