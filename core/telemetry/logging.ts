// Logging: the Fastify logger options (pino JSON, API keys redacted, pretty on a TTY), trace/span ids
// mixed into every line written inside a span, and a destination that also forwards each line to
// the OpenTelemetry logs pipeline once the telemetry plugin attaches it.

import { context, ROOT_CONTEXT, type TraceFlags, trace } from '@opentelemetry/api'
import { type AnyValueMap, type Logger as OtelLogger, SeverityNumber } from '@opentelemetry/api-logs'
import type { FastifyBaseLogger, FastifyLoggerOptions, PinoLoggerOptions } from 'fastify/types/logger.js'
import pino, { type DestinationStream } from 'pino'
import pretty from 'pino-pretty'
import type { TuftConfig } from '../../config/schema.js'

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
 * Options for `Fastify({ logger })`. With telemetry on, lines carry trace_id/span_id and go through a
 * TelemetryLogStream the telemetry plugin connects to OTel logs; with it off there is no mixin and no
 * extra stream, so logging costs what plain pino costs.
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
    options.mixin = traceMixin
    options.stream = new TelemetryLogStream(primary ?? pino.destination({ dest: 1, sync: true }))
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

/** Fresh object per line: pino merges the line's own fields into what the mixin returns. */
function traceMixin(): Record<string, string> {
  const span = trace.getSpan(context.active())
  if (span === undefined) return {}
  const sc = span.spanContext()
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${sc.traceFlags.toString(16)}`.slice(-2) }
}

const SEVERITY: Record<number, [SeverityNumber, string]> = {
  10: [SeverityNumber.TRACE, 'TRACE'],
  20: [SeverityNumber.DEBUG, 'DEBUG'],
  30: [SeverityNumber.INFO, 'INFO'],
  40: [SeverityNumber.WARN, 'WARN'],
  50: [SeverityNumber.ERROR, 'ERROR'],
  60: [SeverityNumber.FATAL, 'FATAL'],
}

/** A pino destination writing to the console as usual and, once attached, to an OTel logger too. */
export class TelemetryLogStream implements DestinationStream {
  readonly #primary: DestinationStream
  #sink: OtelLogger | null = null

  constructor(primary: DestinationStream) {
    this.#primary = primary
  }

  attach(sink: OtelLogger): () => void {
    this.#sink = sink
    return () => {
      if (this.#sink === sink) this.#sink = null
    }
  }

  write(line: string): void {
    this.#primary.write(line)
    if (this.#sink !== null) forward(this.#sink, line)
  }
}

/** Connects the app logger's TelemetryLogStream (if buildLoggerOptions made one) to OTel logs. */
export function attachLogExport(log: FastifyBaseLogger, sink: OtelLogger): (() => void) | null {
  const stream = (log as unknown as { [pino.symbols.streamSym]?: unknown })[pino.symbols.streamSym]
  return stream instanceof TelemetryLogStream ? stream.attach(sink) : null
}

function forward(sink: OtelLogger, line: string): void {
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
  // The ids in the line are those of the span active when it was logged: re-create that context, as
  // the write may happen after the span's own context is gone.
  const ctx =
    typeof trace_id === 'string' && typeof span_id === 'string'
      ? trace.setSpanContext(ROOT_CONTEXT, {
          traceId: trace_id,
          spanId: span_id,
          traceFlags: (typeof trace_flags === 'string' ? Number.parseInt(trace_flags, 16) : 1) as TraceFlags,
          isRemote: true,
        })
      : ROOT_CONTEXT
  sink.emit({
    timestamp: typeof time === 'number' ? time : Date.now(),
    severityNumber,
    severityText,
    body: typeof msg === 'string' ? msg : '',
    attributes: attributes as AnyValueMap,
    context: ctx,
  })
}
