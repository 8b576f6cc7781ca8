// Coded errors: the single place where every error the server can report is defined, with the HTTP
// status it maps to and the future-failure category the Tinker SDK understands (spec §1.9, §4.3), and
// what of an error a client may see (clientError).

import { randomUUID } from 'node:crypto'

export type FailureCategory = 'user' | 'server' | 'unknown'

interface ErrorKind {
  status: number
  category: FailureCategory
  /** A fault of the server itself: its message (paths, URLs) goes to the log, never to the client. */
  internal?: true
}

const KINDS = {
  TUFT_BAD_REQUEST: { status: 400, category: 'user' },
  TUFT_UNAUTHORIZED: { status: 401, category: 'user' },
  TUFT_FORBIDDEN: { status: 403, category: 'user' },
  TUFT_NOT_FOUND: { status: 404, category: 'user' },
  TUFT_PAYLOAD_TOO_LARGE: { status: 413, category: 'user' },
  TUFT_UNSUPPORTED_MEDIA_TYPE: { status: 415, category: 'user' },
  TUFT_UNPROCESSABLE: { status: 422, category: 'user' },
  TUFT_BUSY: { status: 429, category: 'server' },
  TUFT_FUTURE_EXPIRED: { status: 410, category: 'server' },
  TUFT_UNAVAILABLE: { status: 503, category: 'server' },
  TUFT_ENGINE: { status: 500, category: 'server' },
  TUFT_INTERNAL: { status: 500, category: 'server', internal: true },
  TUFT_CONFIG: { status: 500, category: 'server', internal: true },
  TUFT_PERSISTENCE: { status: 500, category: 'server', internal: true },
} as const satisfies Record<string, ErrorKind>

export type ErrorCode = keyof typeof KINDS

/** Every error code (an engine may throw any of them; 4xx ones are the caller's fault). */
export const ERROR_CODES = Object.keys(KINDS) as ErrorCode[]

/**
 * Marks TuftErrors across copies of this module: a third-party engine imports `tuft/engine` (the compiled
 * copy) while the server may run from source, and `instanceof` only sees one copy's class.
 */
const BRAND = Symbol.for('tuft.error')

export class TuftError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly category: FailureCategory

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; category?: FailureCategory }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'TuftError'
    Object.defineProperty(this, BRAND, { value: true })
    this.code = code
    this.statusCode = KINDS[code].status
    this.category = options?.category ?? KINDS[code].category
  }
}

/** The one factory: `tuftError('TUFT_NOT_FOUND', "Unknown training run 'x'")`. */
export function tuftError(
  code: ErrorCode,
  message: string,
  options?: { cause?: unknown; category?: FailureCategory },
): TuftError {
  return new TuftError(code, message, options)
}

export function isTuftError(err: unknown): err is TuftError {
  return (
    err instanceof Error &&
    (err as unknown as Record<symbol, unknown>)[BRAND] === true &&
    Object.hasOwn(KINDS, (err as { code?: unknown }).code as string)
  )
}

/** An error as a client sees it; `correlationId` is set when the message was withheld. */
export interface ClientError {
  status: number
  code: ErrorCode
  message: string
  category: FailureCategory
  correlationId: string | null
}

/**
 * What a client may see of `err`. An internal fault (an error that is not a TuftError, e.g. a
 * filesystem error with its path, or a code marked internal) reaches the client only as
 * "Internal error (correlation id …)"; the caller logs the error with that id.
 */
export function clientError(err: unknown): ClientError {
  if (isTuftError(err) && !(KINDS[err.code] as ErrorKind).internal) {
    return {
      status: err.statusCode,
      code: err.code,
      message: err.message,
      category: err.category,
      correlationId: null,
    }
  }
  const correlationId = randomUUID()
  return {
    status: 500,
    code: isTuftError(err) ? err.code : 'TUFT_INTERNAL',
    message: `Internal error (correlation id ${correlationId})`,
    category: 'server',
    correlationId,
  }
}
