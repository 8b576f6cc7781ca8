// A programmable loopback HTTP server for the client's unit tests: each route answers from a handler
// and every request is recorded, so tests can check headers, bodies and retry behaviour.

import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface FakeAnswer {
  status?: number
  headers?: Record<string, string>
  /** Objects are sent as JSON; Buffers as they are. */
  body?: unknown
}

export type FakeHandler = (req: FakeRequest, count: number) => FakeAnswer

export class FakeServer {
  readonly requests: FakeRequest[] = []
  private readonly routes = new Map<string, FakeHandler>()
  private readonly counts = new Map<string, number>()
  private server?: Server
  url = ''

  /** `key` is `METHOD /path` (no query string). */
  on(key: string, handler: FakeHandler): this {
    this.routes.set(key, handler)
    return this
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const path = (req.url ?? '').split('?')[0]!
        const request = { method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(chunks) }
        this.requests.push(request)
        const key = `${request.method} ${path}`
        const count = this.counts.get(key) ?? 0
        this.counts.set(key, count + 1)
        const handler = this.routes.get(key)
        const answer = handler
          ? handler(request, count)
          : { status: 404, body: { detail: `no route ${key}` } }
        const raw = answer.body
        const isBuffer = Buffer.isBuffer(raw)
        const body = raw === undefined ? Buffer.alloc(0) : isBuffer ? raw : Buffer.from(JSON.stringify(raw))
        res.writeHead(answer.status ?? 200, {
          ...(raw === undefined || isBuffer ? {} : { 'content-type': 'application/json' }),
          'content-length': String(body.length),
          ...answer.headers,
        })
        res.end(body)
      })
    })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }

  /** Requests to `path`, in arrival order. */
  sent(path: string): FakeRequest[] {
    return this.requests.filter((r) => r.path === path)
  }
}
