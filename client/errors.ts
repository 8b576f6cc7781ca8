// Errors the TS client raises to its users, mirroring the Tinker SDK's exception kinds (spec §1.9, §4.3).

export type FailureCategory = 'user' | 'server' | 'unknown'

/** A non-2xx HTTP answer that was not (or no longer) retried. `body` is the parsed JSON or the raw text. */
export class APIStatusError extends Error {
  readonly status: number
  readonly body: unknown
  constructor(status: number, body: unknown, what: string) {
    super(`${what}: Error code: ${status} - ${typeof body === 'string' ? body : JSON.stringify(body)}`)
    this.name = 'APIStatusError'
    this.status = status
    this.body = body
  }
}

/** The server could not be reached, or did not answer in time, after the allowed retries. */
export class APIConnectionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'APIConnectionError'
  }
}

/** An asynchronous operation failed on the server: retrieve_future answered `{"error", "category"}`. */
export class RequestFailedError extends Error {
  readonly requestId: string
  readonly category: FailureCategory
  constructor(message: string, requestId: string, category: FailureCategory) {
    super(message)
    this.name = 'RequestFailedError'
    this.requestId = requestId
    this.category = category
  }
}

/** retrieve_future answered 410: the result is gone (e.g. a server restart); resubmitting may help. */
export class FutureExpiredError extends Error {
  readonly requestId: string
  constructor(requestId: string) {
    super(`Future ${requestId} expired on the server (HTTP 410)`)
    this.name = 'FutureExpiredError'
    this.requestId = requestId
  }
}

/** The answer had the wrong shape or encoding for what was asked. */
export class ResponseFormatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ResponseFormatError'
  }
}
