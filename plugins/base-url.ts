// This server's own base URL, for peers and for links handed to clients: server.public_base_url, else
// the address it listens on. Never a request's Host header, which whoever sends the request chooses.

import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import type { FastifyInstance } from 'fastify'

/** public_base_url, else the listen address as is (a wildcard one reaches peers on this machine only). */
export function selfUrl(app: FastifyInstance): string | null {
  return configured(app) ?? listening(app, (address) => address)
}

/**
 * The base of links in answers (archive downloads): public_base_url, else the listen address with a
 * wildcard one replaced by this machine's name, else '' (relative links, before the server listens).
 */
export function linkBaseUrl(app: FastifyInstance): string {
  return configured(app) ?? listening(app, (address) => (isWildcard(address) ? hostname() : address)) ?? ''
}

function configured(app: FastifyInstance): string | null {
  return app.tuftConfig.server.public_base_url?.replace(/\/+$/, '') ?? null
}

function listening(app: FastifyInstance, hostOf: (address: string) => string): string | null {
  const address = app.server.address() as AddressInfo | string | null
  if (address === null || typeof address === 'string') return null
  const host = hostOf(address.address)
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::'
}
