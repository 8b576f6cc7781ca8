// Waiting for asynchronous operations (spec §4): long-polls retrieve_future and classifies each answer
// as the SDK does (§4.3): try_again/408 poll again, {"error","category"} fails, 410 expired, others retry.

import { setTimeout as sleep } from 'node:timers/promises'
import type { FutureError, TryAgain, UntypedAPIFuture } from '../core/wire/schemas.js'
import {
  APIConnectionError,
  APIStatusError,
  type FailureCategory,
  FutureExpiredError,
  RequestFailedError,
  ResponseFormatError,
} from './errors.js'
import { backoffMs, type HttpClient, type HttpResponse, parseBody } from './http.js'

/** The value of X-Tinker-Request-Type for each kind of operation. */
export type RequestType =
  | 'CreateModel'
  | 'ForwardBackward'
  | 'Forward'
  | 'OptimStep'
  | 'SaveWeights'
  | 'LoadWeights'
  | 'SaveWeightsForSampler'
  | 'Sample'

const PROTOBUF_RESULTS = new Set<RequestType>(['ForwardBackward', 'Forward', 'Sample'])
const POLL_TIMEOUT_MS = 45_000
const BAD_REQUEST_RETRIES = 3
const CATEGORIES = new Set<FailureCategory>(['user', 'server', 'unknown'])

/** What a poll answer means for the caller. */
type PollOutcome =
  | { kind: 'done'; body: Buffer | unknown }
  | { kind: 'pending' }
  | { kind: 'retry'; delayMs: number }
  | { kind: 'failed'; error: Error }

function classifyPoll(
  res: HttpResponse,
  requestId: string,
  type: RequestType,
  attempt: { backoff: number; badRequests: number },
  delay: (n: number) => number,
): PollOutcome {
  const { status } = res
  if (status >= 200 && status < 300) {
    const protobuf = (res.headers.get('content-type') ?? '').includes('application/x-protobuf')
    const wantsProtobuf = PROTOBUF_RESULTS.has(type)
    if (protobuf) {
      if (wantsProtobuf) return { kind: 'done', body: res.body }
      return { kind: 'failed', error: new ResponseFormatError(`${type} result arrived as protobuf`) }
    }
    const body = parseBody(res)
    if (typeof body !== 'object' || body === null) {
      return {
        kind: 'failed',
        error: new ResponseFormatError(`retrieve_future answered a non-JSON body: ${body}`),
      }
    }
    const record = body as Partial<TryAgain & FutureError> & { status?: string }
    if (record.type === 'try_again' || record.status === 'complete_metadata') return { kind: 'pending' }
    if ('error' in record) {
      const category = CATEGORIES.has(record.category as FailureCategory) ? record.category! : 'unknown'
      return { kind: 'failed', error: new RequestFailedError(String(record.error), requestId, category) }
    }
    if (wantsProtobuf) {
      return {
        kind: 'failed',
        error: new ResponseFormatError(`${type} result arrived as JSON, not protobuf`),
      }
    }
    return { kind: 'done', body }
  }
  if (status === 408) return { kind: 'pending' }
  if (status === 410) return { kind: 'failed', error: new FutureExpiredError(requestId) }
  if (status === 402) return { kind: 'retry', delayMs: 5_000 }
  if (status === 429 || status >= 500) return { kind: 'retry', delayMs: delay(attempt.backoff++) }
  if (status === 400 && ++attempt.badRequests <= BAD_REQUEST_RETRIES)
    return { kind: 'retry', delayMs: delay(0) }
  return { kind: 'failed', error: new APIStatusError(status, parseBody(res), `retrieve_future ${requestId}`) }
}

/**
 * Polls one future until it resolves. Protobuf results come back as raw bytes for the caller to
 * decode; JSON results parsed. Gives up after RetryOptions.futureTimeoutMs.
 */
export async function awaitFuture(
  http: HttpClient,
  future: UntypedAPIFuture,
  type: RequestType,
): Promise<unknown> {
  const requestId = future.request_id
  const deadline = Date.now() + http.retry.futureTimeoutMs
  const attempt = { backoff: 0, badRequests: 0 }
  const delay = (n: number) => backoffMs(n, http.retry)
  for (let iteration = 0; Date.now() < deadline; iteration++) {
    let res: HttpResponse
    try {
      res = await http.call('POST', '/api/v1/retrieve_future', {
        json: { request_id: requestId, allow_metadata_only: false },
        accept: PROTOBUF_RESULTS.has(type) ? 'application/x-protobuf' : 'application/json',
        headers: { 'X-Tinker-Request-Type': type, 'X-Tinker-Request-Iteration': String(iteration) },
        retries: 0,
        timeoutMs: POLL_TIMEOUT_MS,
        anyStatus: true,
      })
    } catch (err) {
      if (!(err instanceof APIConnectionError)) throw err
      await sleep(delay(attempt.backoff++))
      continue
    }
    const outcome = classifyPoll(res, requestId, type, attempt, delay)
    if (outcome.kind === 'done') return outcome.body
    if (outcome.kind === 'failed') throw outcome.error
    if (outcome.kind === 'retry') await sleep(outcome.delayMs)
  }
  throw new APIConnectionError(`Future ${requestId} did not finish within ${http.retry.futureTimeoutMs} ms`)
}
