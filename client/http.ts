// The client's HTTP layer over global fetch: base-URL joining, auth and idempotency headers, and the
// per-call retry rules of spec §1.8 Layer A (408/409/429/5xx, connection errors, bare 400s), bounded.

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { APIConnectionError, APIStatusError } from './errors.js'

export interface RetryOptions {
  /** Retries of one HTTP call (Layer A). */
  maxRetries: number
  /** First backoff delay; doubles per attempt up to maxDelayMs, with 25 % jitter. */
  baseDelayMs: number
  maxDelayMs: number
  /** Longest wait for one future's result before giving up. */
  futureTimeoutMs: number
  /** Resubmissions of a sample after it was lost (410, retryable failures; Layer D). */
  sampleRetries: number
}

export const DEFAULT_RETRY: RetryOptions = {
  maxRetries: 10,
  baseDelayMs: 500,
  maxDelayMs: 10_000,
  futureTimeoutMs: 60 * 60 * 1000,
  sampleRetries: 10,
}

export interface HttpOptions {
  baseUrl: string
  apiKey: string
  retry?: Partial<RetryOptions>
  /** Read timeout of an ordinary call (the SDK uses 60 s). */
  timeoutMs?: number
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | undefined>
  json?: unknown
  body?: Uint8Array
  contentType?: string
  accept?: string
  headers?: Record<string, string>
  /** Overrides RetryOptions.maxRetries for this call (0 for polls and heartbeats). */
  retries?: number
  timeoutMs?: number
  /** 'manual' returns 3xx answers instead of following them (checkpoint archive URLs). */
  redirect?: 'follow' | 'manual'
  /** Return every HTTP answer as is (the caller classifies statuses); only connection errors throw. */
  anyStatus?: boolean
}

export interface HttpResponse {
  status: number
  headers: Headers
  body: Buffer
}

export const CLIENT_USER_AGENT = 'TuftTS/0.1.0'

/** Statuses the server uses to say "try again" (spec §1.8); 409 is a lock conflict there. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500
}

export function backoffMs(attempt: number, retry: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  const base = Math.min(retry.baseDelayMs * 2 ** attempt, retry.maxDelayMs)
  return base * (0.75 + 0.25 * Math.random())
}

/** `retry-after-ms` or `retry-after` (seconds or HTTP date) when within (0, 60] s, else undefined. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '')
  if (ms > 0 && ms <= 60_000) return ms
  const value = headers.get('retry-after')
  if (!value) return undefined
  const seconds = Number(value)
  const fromValue = Number.isNaN(seconds) ? Date.parse(value) - now : seconds * 1000
  return fromValue > 0 && fromValue <= 60_000 ? fromValue : undefined
}

export function parseBody(res: HttpResponse): unknown {
  const text = res.body.toString('utf8')
  if (!(res.headers.get('content-type') ?? '').includes('json')) return text
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export class HttpClient {
  readonly retry: RetryOptions
  private readonly base: string
  private readonly apiKey: string
  private readonly timeoutMs: number

  constructor(opts: HttpOptions) {
    const url = new URL(opts.baseUrl)
    // Endpoint paths are appended to the base path, which keeps any prefix (spec §1.1).
    if (!url.pathname.endsWith('/')) url.pathname += '/'
    this.base = url.toString()
    this.apiKey = opts.apiKey
    this.retry = { ...DEFAULT_RETRY, ...opts.retry }
    this.timeoutMs = opts.timeoutMs ?? 60_000
  }

  url(path: string, query?: CallOptions['query']): URL {
    const url = new URL(path.replace(/^\//, ''), this.base)
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    return url
  }

  /** One logical call: retried per Layer A with a stable idempotency key; non-2xx in the end throws. */
  async call(method: string, path: string, opts: CallOptions = {}): Promise<HttpResponse> {
    const maxRetries = opts.retries ?? this.retry.maxRetries
    const headers: Record<string, string> = {
      'X-API-Key': this.apiKey,
      Accept: opts.accept ?? 'application/json',
      'User-Agent': CLIENT_USER_AGENT,
      ...opts.headers,
    }
    if (method !== 'GET') {
      headers['Content-Type'] = opts.contentType ?? 'application/json'
      headers['X-Idempotency-Key'] = `tuft-ts-retry-${randomUUID()}`
    }
    const body = opts.body ?? (opts.json === undefined ? undefined : Buffer.from(JSON.stringify(opts.json)))
    const what = `${method} ${path}`
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse | undefined
      let failure: unknown
      try {
        const r = await fetch(this.url(path, opts.query), {
          method,
          headers: { ...headers, 'X-Stainless-Retry-Count': String(attempt) },
          body,
          redirect: opts.redirect ?? 'follow',
          signal: AbortSignal.timeout(opts.timeoutMs ?? this.timeoutMs),
        })
        res = { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) }
      } catch (err) {
        failure = err
      }
      // A 400 without a body is a proxy's doing, not the server's answer: treat it as a lost connection.
      const bare400 = res?.status === 400 && res.body.length === 0
      if (res && !bare400) {
        if (res.status < 400 || opts.anyStatus) return res
        const override = res.headers.get('x-should-retry')
        const retryable = override === null ? isRetryableStatus(res.status) : override === 'true'
        if (!retryable || attempt >= maxRetries) throw new APIStatusError(res.status, parseBody(res), what)
        await sleep(retryAfterMs(res.headers) ?? backoffMs(attempt, this.retry))
        continue
      }
      if (attempt >= maxRetries) {
        const reason = failure instanceof Error ? failure.message : 'empty 400 answer'
        throw new APIConnectionError(`${what}: ${reason}`, { cause: failure })
      }
      await sleep(backoffMs(attempt, this.retry))
    }
  }

  /** A JSON call: the parsed body of the 2xx answer (undefined for an empty one). */
  async json<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const res = await this.call(method, path, opts)
    return (res.body.length ? JSON.parse(res.body.toString('utf8')) : undefined) as T
  }
}
