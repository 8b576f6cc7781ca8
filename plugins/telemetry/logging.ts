// Logging: the Fastify logger options (pino JSON, API keys redacted, pretty on a TTY), trace/span ids
// in every line of a logger bound to a span (each request's logger, by http.ts), and a
// destination that also forwards each line to the OpenTelemetry logs pipeline once the telemetry
// plugin attaches it. The forwarding (parsing the line pino serialized and redacted, building the
// OTel record) happens off the request path, in the telemetry backlog's batch; the record keeps the
// line's own time and span context.

import { type Context, ROOT_CONTEXT, type Span, type TraceFlags, trace } from '@opentelemetry/api'
import { type AnyValueMap, type Logger as OtelLogger, SeverityNumber } from '@opentelemetry/api-logs'
import type { FastifyBaseLogger, FastifyLoggerOptions, PinoLoggerOptions } from 'fastify/types/logger.js'
import pino, { type DestinationStream } from 'pino'
import pretty from 'pino-pretty'
import type { TuftConfig } from '../../config/schema.js'
import type { Backlog } from './backlog.js'

export type LoggerOptions = FastifyLoggerOptions & PinoLoggerOptions

/** Every place a credential could reach a log line. Fastify's req serializer omits headers; keep it so. */
export const REDACTED_PATHS = [
  'req.headers["x-api-key"]',
  'req.headers.authorization',
  'headers["x-api-key"]',
  'headers.authorization',
  // The config's key → user map, should the config ever be logged.
  'authorized_users',
]

/**
 * Options for `Fastify({ logger })`. With telemetry on, every line goes through a TelemetryLogStream
 * the telemetry plugin connects to OTel logs (and lines of span-bound loggers carry the span's ids,
 * see bindLoggerSpan); with it off there is no extra stream, so logging costs what plain pino costs.
 */
export function buildLoggerOptions(
  config: Pick<TuftConfig, 'log_level' | 'telemetry'>,
  output: { stdout?: NodeJS.WritableStream & { isTTY?: boolean } } = {},
): LoggerOptions {
  const stdout = output.stdout ?? process.stdout
  const options: LoggerOptions = {
    level: config.log_level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  }
  // A stream given by the caller is used as is; process.stdout goes through sonic-boom like pino's default.
  const plain: DestinationStream | undefined = output.stdout
  const primary = stdout.isTTY
    ? pretty({ colorize: true, destination: stdout, sync: true, ignore: 'pid,hostname' })
    : plain
  if (config.telemetry.enabled) {
    // pino's own default destination: asynchronous (lines written in batches, flushed at exit).
    // Synchronous writes made every logged request pay a write(2) per line.
    options.stream = new TelemetryLogStream(primary ?? pino.destination({ dest: process.stdout.fd ?? 1 }))
  } else if (primary !== undefined) {
    options.stream = primary
  }
  return options
}

/** The same logger as a pino instance, for a caller that hands Fastify a `loggerInstance` (the CLI). */
export function createLogger(
  config: Pick<TuftConfig, 'log_level' | 'telemetry'>,
  output: { stdout?: NodeJS.WritableStream & { isTTY?: boolean } } = {},
): pino.Logger {
  const { stream, ...options } = buildLoggerOptions(config, output)
  return pino(options as PinoLoggerOptions, stream as DestinationStream | undefined)
}

/** The span a request logger belongs to (a property: pino's children inherit it). */
const SPAN = Symbol('tuft.span')

/** trace_flags as written in a line, for the two flag values W3C defines (others are formatted). */
const FLAGS = ['00', '01']

/**
 * Binds a request's logger to its span: every line it and its children write carries the span's
 * trace_id, span_id and trace_flags. They are appended to the logger's serialized bindings (pino's
 * public `chindingsSym`), which pino copies into each line as they are: a mixin serializes them again
 * on every line, and passing them to logger.child() made every request ~17 µs slower.
 */
export function bindLoggerSpan(logger: object, span: Span): void {
  const sc = span.spanContext()
  const flags = FLAGS[sc.traceFlags] ?? `0${sc.traceFlags.toString(16)}`.slice(-2)
  const target = logger as { [SPAN]?: Span; [pino.symbols.chindingsSym]: string }
  // Hex ids need no JSON escaping.
  target[pino.symbols.chindingsSym] +=
    `,"trace_id":"${sc.traceId}","span_id":"${sc.spanId}","trace_flags":"${flags}"`
  target[SPAN] = span
}

export function loggerSpan(logger: object): Span | undefined {
  return (logger as { [SPAN]?: Span })[SPAN]
}

const SEVERITY: Record<number, [SeverityNumber, string]> = {
  10: [SeverityNumber.TRACE, 'TRACE'],
  20: [SeverityNumber.DEBUG, 'DEBUG'],
  30: [SeverityNumber.INFO, 'INFO'],
  40: [SeverityNumber.WARN, 'WARN'],
  50: [SeverityNumber.ERROR, 'ERROR'],
  60: [SeverityNumber.FATAL, 'FATAL'],
}

/**
 * Fastify's access lines. pino writes the message key last, so the end of the line identifies them
 * without parsing it.
 */
const REQUEST_LINE_ENDINGS = ['"msg":"incoming request"}\n', '"msg":"request completed"}\n'] as const

export interface LogExportOptions {
  /** Forward Fastify's per-request access lines too (default: only the console gets them). */
  requestLines?: boolean
}

/** A pino destination writing to the console as usual and, once attached, to an OTel logger too. */
export class TelemetryLogStream implements DestinationStream {
  readonly #primary: DestinationStream
  #sink: OtelLogger | null = null
  #backlog: Backlog | null = null
  #requestLines = false
  /** Lines written but not yet forwarded (only with a backlog). */
  #pending: string[] = []
  readonly #forwarder = new Forwarder()

  constructor(primary: DestinationStream) {
    this.#primary = primary
  }

  /** pino's logger.flush() reaches the console destination through here. */
  flush(done?: (err?: Error) => void): void {
    const primary = this.#primary as { flush?: (done?: (err?: Error) => void) => void }
    if (typeof primary.flush === 'function') primary.flush(done)
    else done?.()
  }

  /**
   * Forwards every line written from now on to `sink` (access lines only if `options.requestLines`):
   * in the backlog's next batch when one is given, else at once. The returned function forwards what
   * is still queued and detaches.
   */
  attach(sink: OtelLogger, backlog?: Backlog, options: LogExportOptions = {}): () => void {
    this.#sink = sink
    this.#backlog = backlog ?? null
    this.#requestLines = options.requestLines ?? false
    const unregister = backlog?.addDrain(this.#drain)
    return () => {
      if (this.#sink !== sink) return
      this.#drain()
      unregister?.()
      this.#sink = null
      this.#backlog = null
    }
  }

  write(line: string): void {
    this.#primary.write(line)
    const sink = this.#sink
    if (sink === null) return
    if (
      !this.#requestLines &&
      (line.endsWith(REQUEST_LINE_ENDINGS[0]) || line.endsWith(REQUEST_LINE_ENDINGS[1]))
    )
      return
    const backlog = this.#backlog
    if (backlog === null) {
      this.#forwarder.forward(sink, line)
      return
    }
    this.#pending.push(line)
    if (this.#pending.length === 1) backlog.schedule()
  }

  readonly #drain = (): void => {
    const sink = this.#sink
    const lines = this.#pending
    if (sink === null || lines.length === 0) return
    this.#pending = []
    for (const line of lines) this.#forwarder.forward(sink, line)
  }
}

/**
 * Connects the app logger's TelemetryLogStream (if buildLoggerOptions made one) to OTel logs, through
 * `backlog` when given (off the request path).
 */
export function attachLogExport(
  log: FastifyBaseLogger,
  sink: OtelLogger,
  backlog?: Backlog,
  options?: LogExportOptions,
): (() => void) | null {
  const stream = (log as unknown as { [pino.symbols.streamSym]?: unknown })[pino.symbols.streamSym]
  return stream instanceof TelemetryLogStream ? stream.attach(sink, backlog, options) : null
}

/** Turns pino lines into OTel log records; remembers the last span context (lines come in runs). */
class Forwarder {
  #traceId = ''
  #spanId = ''
  #flags = ''
  #context: Context = ROOT_CONTEXT

  forward(sink: OtelLogger, line: string): void {
    let record: Record<string, unknown>
    try {
      record = JSON.parse(line)
    } catch {
      return // not pino JSON (a pretty-printed primary does not change what reaches us, so never expected)
    }
    const {
      level,
      time,
      msg,
      trace_id,
      span_id,
      trace_flags,
      pid: _pid,
      hostname: _host,
      ...attributes
    } = record
    const [severityNumber, severityText] = SEVERITY[typeof level === 'number' ? level : 30] ?? SEVERITY[30]!
    sink.emit({
      timestamp: typeof time === 'number' ? time : Date.now(),
      severityNumber,
      severityText,
      body: typeof msg === 'string' ? msg : '',
      attributes: attributes as AnyValueMap,
      context: this.#contextOf(trace_id, span_id, trace_flags),
    })
  }

  /**
   * The ids in the line are those of the span active when it was logged: re-create that context, as
   * the write may happen after the span's own context is gone.
   */
  #contextOf(traceId: unknown, spanId: unknown, flags: unknown): Context {
    if (typeof traceId !== 'string' || typeof spanId !== 'string') return ROOT_CONTEXT
    const flagText = typeof flags === 'string' ? flags : ''
    if (traceId !== this.#traceId || spanId !== this.#spanId || flagText !== this.#flags) {
      this.#traceId = traceId
      this.#spanId = spanId
      this.#flags = flagText
      this.#context = trace.setSpanContext(ROOT_CONTEXT, {
        traceId,
        spanId,
        traceFlags: (flagText === '' ? 1 : Number.parseInt(flagText, 16)) as TraceFlags,
        isRemote: true,
      })
    }
    return this.#context
  }
}
