// Calls to the server's public APIs with the signed-in user's key, and their failures in plain words.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** What went wrong, as a person would want to read it (the server's own detail when it gave one). */
function plainWords(status: number, detail: string | undefined): string {
  if (status === 401) return 'The server did not accept this API key. Check the key and sign in again.'
  if (status === 403) return detail ?? 'This account may not see that.'
  if (status === 404) return detail ? `Not found: ${detail}` : 'Not found.'
  if (status === 429) return 'The server is busy. Try again in a moment.'
  if (status >= 500) return `The server could not do this${detail ? `: ${detail}` : '.'}`
  return detail ?? `The request failed (HTTP ${status}).`
}

export interface CallOptions {
  method?: string
  json?: unknown
  /** The key to use instead of the signed-in one (checking a key at sign-in). */
  key?: string
  signal?: AbortSignal
}

let currentKey: string | null = null
export const setApiKey = (key: string | null): void => {
  currentKey = key
}

/** Sends the request and returns the final response (redirects followed), or throws an ApiError. */
export async function request(path: string, opts: CallOptions = {}): Promise<Response> {
  const key = opts.key ?? currentKey
  const headers: Record<string, string> = key ? { 'x-api-key': key } : {}
  if (opts.json !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      ...(opts.json === undefined ? {} : { body: JSON.stringify(opts.json) }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    })
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err
    throw new ApiError(0, 'The server could not be reached. Is tuft still running?')
  }
  if (!res.ok) {
    let detail: string | undefined
    try {
      detail = ((await res.json()) as { detail?: string }).detail
    } catch {}
    throw new ApiError(res.status, plainWords(res.status, detail))
  }
  return res
}

/** A JSON call; 204 answers resolve to null. */
export async function api<T>(path: string, opts: CallOptions = {}): Promise<T> {
  const res = await request(path, opts)
  return (res.status === 204 ? null : await res.json()) as T
}

export const errorText = (err: unknown): string =>
  err instanceof ApiError ? err.message : `Something went wrong: ${(err as Error).message ?? String(err)}`
