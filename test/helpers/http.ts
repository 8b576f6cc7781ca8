// Raw HTTP calls for tests that must send what a well-behaved client never would (bad keys, broken
// bodies), and an assertion for the spec's error answers: status, JSON {"detail"} and Content-Length.

import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { encodeForwardBackwardRequest, type ForwardBackwardRequest } from '../../core/wire/proto.js'

export interface Answer {
  status: number
  headers: Headers
  text: string
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected loosely
  json: any
}

export interface CallOptions {
  key?: string
  json?: unknown
  body?: Uint8Array | string
  headers?: Record<string, string>
}

export async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 })
}

export async function call(
  base: string,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.key ? { 'x-api-key': opts.key } : {}), ...opts.headers }
  let body: string | Uint8Array | undefined
  if (opts.json !== undefined) {
    headers['content-type'] ??= 'application/json'
    body = JSON.stringify(opts.json)
  } else if (opts.body !== undefined) {
    body = opts.body
  }
  const res = await fetch(`${base}/api/v1${path}`, { method, headers, body, redirect: 'manual' })
  const text = await res.text()
  let json: unknown = null
  try {
    json = JSON.parse(text)
  } catch {}
  return { status: res.status, headers: res.headers, text, json }
}

/** The spec's error answer: the status, a JSON {"detail"} body and an explicit Content-Length. */
export function assertError(a: Answer, status: number, detail?: RegExp): void {
  assert.equal(a.status, status, `expected ${status}, got ${a.status}: ${a.text}`)
  assert.ok(a.headers.get('content-length'), 'error answers carry Content-Length')
  assert.ok(Number(a.headers.get('content-length')) > 0)
  assert.equal(typeof a.json?.detail, 'string', `error body has a detail: ${a.text}`)
  if (detail) assert.match(a.json.detail, detail)
}

/** Posts a forward_backward protobuf body. */
export function postFwdBwd(
  base: string,
  key: string,
  req: ForwardBackwardRequest,
  headers: Record<string, string> = {},
) {
  return call(base, 'POST', '/forward_backward', {
    key,
    body: encodeForwardBackwardRequest(req),
    headers: { 'content-type': 'application/x-protobuf', ...headers },
  })
}

/** A one-datum cross-entropy request over `tokens` (targets shifted by one). */
export function ceRequest(
  modelId: string,
  seqId: number,
  tokens: number[],
  forwardOnly = false,
): ForwardBackwardRequest {
  const input = tokens.slice(0, -1)
  return {
    modelId,
    seqId,
    lossFn: 'cross_entropy',
    lossFnConfig: {},
    forwardOnly,
    data: [
      {
        chunks: [{ type: 'encoded_text', tokens: Int32Array.from(input) }],
        lossFnInputs: {
          target_tokens: { dtype: 'int64', shape: [input.length], data: Int32Array.from(tokens.slice(1)) },
          weights: { dtype: 'float32', shape: [input.length], data: new Float32Array(input.length).fill(1) },
        },
      },
    ],
  }
}

/** Polls a future until it is finished (try_again answers are polled again). */
export async function result(
  base: string,
  key: string,
  requestId: string,
  accept = 'application/json',
): Promise<Answer> {
  for (;;) {
    const a = await call(base, 'POST', '/retrieve_future', {
      key,
      json: { request_id: requestId },
      headers: { accept },
    })
    if (a.json?.type !== 'try_again') return a
  }
}
