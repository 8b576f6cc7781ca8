// One vLLM server over HTTP: JSON requests bounded by a timeout and the caller's abort signal, vLLM's
// error answers mapped to Tinker's categories (400 → user error, 429 → back-pressure, unreachable or 5xx
// → a retryable server error), the work it has outstanding, and the adapter names loaded on it.

import { type TuftError, tuftError } from '../../core/errors.js'

/** vLLM answered that the model (an adapter name) does not exist: it restarted, or unloaded it. */
export class ModelNotFound extends Error {}

/** The message of a vLLM error body: `{"error": {"message"}}`, the older flat `{"message"}`, or FastAPI's `detail`. */
function messageOf(text: string): string {
  try {
    const body = JSON.parse(text) as {
      error?: { message?: string } | string
      message?: string
      detail?: unknown
    }
    if (typeof body.error === 'object' && body.error?.message) return body.error.message
    if (typeof body.error === 'string') return body.error
    if (body.message) return body.message
    if (body.detail !== undefined) return JSON.stringify(body.detail)
  } catch {}
  return text.slice(0, 500)
}

export class Replica {
  /** Prompt plus requested tokens of the requests in flight (least outstanding work gets the next). */
  outstanding = 0
  /** Adapter names loaded on this server, with their loads in flight. */
  readonly loaded = new Map<string, Promise<void>>()
  /** Set when a request could not reach it; cleared by the next successful health check. */
  down = false

  constructor(
    readonly url: string,
    private readonly apiKey: string | undefined,
    private readonly timeoutMs: number,
  ) {}

  /** POSTs JSON and answers the response text; throws coded errors (ModelNotFound for an unknown model). */
  async post(path: string, body: string, signal?: AbortSignal): Promise<string> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    let res: Response
    try {
      res = await fetch(`${this.url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
        },
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      })
    } catch (err) {
      if (signal?.aborted)
        throw tuftError('TUFT_UNAVAILABLE', 'the sample request was cancelled', { cause: err })
      this.down = true
      throw this.unreachable(err, timeout.aborted)
    }
    this.down = false
    const text = await res.text().catch((err: unknown) => {
      this.down = true
      throw this.unreachable(err, timeout.aborted)
    })
    if (res.ok) return text
    throw this.failure(res.status, messageOf(text))
  }

  /** GET /health: true when the server answers 200. */
  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(5000) })
      await res.arrayBuffer()
      this.down = !res.ok
    } catch {
      this.down = true
    }
    return !this.down
  }

  private unreachable(err: unknown, timedOut: boolean): TuftError {
    const why = timedOut
      ? `did not answer within ${this.timeoutMs} ms`
      : `is unreachable (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message})`
    return tuftError('TUFT_UNAVAILABLE', `vLLM server ${this.url} ${why}; retry shortly`, { cause: err })
  }

  private failure(status: number, message: string): Error {
    const text = `vLLM server ${this.url}: ${message}`
    if (status === 404)
      return /does not exist|not found|cannot be found/i.test(message)
        ? new ModelNotFound(text)
        : tuftError('TUFT_NOT_FOUND', text)
    if (status === 429) return tuftError('TUFT_BUSY', text)
    // A wrong api_key is this server's configuration, not the user's request.
    if (status === 401 || status === 403) return tuftError('TUFT_ENGINE', text)
    if (status === 503) return tuftError('TUFT_UNAVAILABLE', text)
    if (status >= 400 && status < 500) return tuftError('TUFT_BAD_REQUEST', text)
    return tuftError('TUFT_ENGINE', text)
  }
}
