// The auth plugin (spec §1.3): every route except those marked `config: { public: true }` needs an
// X-API-Key (or, for OpenAI clients, `Authorization: Bearer`) starting with `tml-` that maps to a
// configured user. Keys are compared in constant time
// (digests, every configured key checked) and never logged. With no authorized_users configured only
// the local dev key is accepted (and the CLI refuses to listen beyond loopback).

import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { TuftConfig } from '../config/schema.js'
import { tuftError } from '../core/errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user; null on public routes and before authentication. */
    userId: string | null
  }
  interface FastifyContextConfig {
    /** No X-API-Key needed (health checks, self-authorising archive links). */
    public?: boolean
  }
}

export const DEV_API_KEY = 'tml-local-dev-key'

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest()

/** The user id behind an API key, or null; runs in time independent of which key (if any) matched. */
export function keyChecker(users: Readonly<Record<string, string>>): (key: string) => string | null {
  const entries = Object.entries(users).map(([key, user]) => ({ digest: digest(key), user }))
  return (key) => {
    const given = digest(key)
    let found: string | null = null
    for (const e of entries) if (timingSafeEqual(e.digest, given) && found === null) found = e.user
    return found
  }
}

/**
 * Operators administer the server: `operators`, or its older alias `telemetry.operators`. In dev mode
 * (no authorized_users, so only the local dev key exists) the one user is an operator.
 */
export function isOperator(config: TuftConfig, user: string): boolean {
  if (Object.keys(config.authorized_users).length === 0) return true
  return config.operators.includes(user) || config.telemetry.operators.includes(user)
}

/** The API key of a request: X-API-Key, else the token of `Authorization: Bearer` (OpenAI clients). */
function apiKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key']
  const key = Array.isArray(header) ? header[0] : header
  if (key) return key
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')
  return bearer?.[1]
}

/** The authenticated user of a request that passed the auth hook. */
export function userOf(request: FastifyRequest): string {
  if (request.userId === null) throw tuftError('TUFT_UNAUTHORIZED', 'Not authenticated')
  return request.userId
}

async function authPlugin(app: FastifyInstance): Promise<void> {
  const config = app.tuftConfig
  const users =
    Object.keys(config.authorized_users).length > 0
      ? config.authorized_users
      : { [DEV_API_KEY]: config.model_owner }
  const check = keyChecker(users)
  app.decorateRequest('userId', null)
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public) return
    const key = apiKeyOf(request)
    if (!key) throw tuftError('TUFT_UNAUTHORIZED', 'Missing X-API-Key header (or Authorization: Bearer)')
    if (!key.startsWith('tml-'))
      throw tuftError('TUFT_UNAUTHORIZED', "Invalid API key: keys start with 'tml-'")
    const user = check(key)
    if (user === null) throw tuftError('TUFT_UNAUTHORIZED', 'Invalid API key')
    request.userId = user
  })
}

export default fp(authPlugin, { name: 'tuft-auth', fastify: '5.x', dependencies: ['tuft-config'] })
