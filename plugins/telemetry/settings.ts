// What telemetry does, decided in one place from the config's telemetry section and the environment:
// TuFT's variables (TUFT_OTLP_ENDPOINT, TUFT_OTEL_DEBUG) and the standard OTEL_* ones. The rules:
// the environment beats the file; within it the more specific variable wins (per signal over general,
// TUFT_OTLP_ENDPOINT over OTEL_EXPORTER_OTLP_ENDPOINT). A value that OpenTelemetry would only warn
// about and then ignore is a TUFT_CONFIG error here, so a typo cannot send telemetry elsewhere unseen.

import { randomUUID } from 'node:crypto'
import { type TelemetryConfig, TelemetryConfigSchema } from '../../config/schema.js'
import { tuftError } from '../../core/errors.js'

export type OtlpProtocol = TelemetryConfig['otlp_protocol']
export type Signal = 'traces' | 'metrics' | 'logs'
type Env = NodeJS.ProcessEnv

const PROTOCOLS: readonly OtlpProtocol[] = TelemetryConfigSchema.properties.otlp_protocol.anyOf.map(
  (p) => p.const,
)

/** Where one signal is exported. */
export interface SignalExport {
  /** The OTLP destination (a full URL: for HTTP with its /v1/<signal> path), or null. */
  otlp: { url: string; protocol: OtlpProtocol } | null
  console: boolean
}

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio'

const SAMPLERS: readonly SamplerName[] = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
]

export interface SamplerChoice {
  name: SamplerName
  /** The ratio of the traceidratio samplers (1 for the others). */
  ratio: number
}

/** The OpenTelemetry default collector endpoints, used when nothing names one. */
const DEFAULT_ENDPOINT: Record<OtlpProtocol, string> = {
  'http/protobuf': 'http://localhost:4318',
  'http/json': 'http://localhost:4318',
  grpc: 'http://localhost:4317',
}

/** OTLP metric push interval; dashboards of training runs want better than OpenTelemetry's 60 s. */
const METRIC_EXPORT_INTERVAL_MS = 15_000

/** OTEL_SDK_DISABLED=true: no telemetry at all, whatever the file enables (Prometheus included). */
export function sdkDisabled(env: Env): boolean {
  const value = read(env, 'OTEL_SDK_DISABLED')?.toLowerCase()
  if (value === undefined || value === 'false') return false
  if (value === 'true') return true
  throw invalid('OTEL_SDK_DISABLED', value, 'true or false')
}

/**
 * The resource attributes: a fresh service.instance.id, then the file's `resource_attributes` and
 * `service_name`, then OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (each later one wins).
 */
export function resolveResource(settings: TelemetryConfig, env: Env): Record<string, string> {
  const service = read(env, 'OTEL_SERVICE_NAME')
  return {
    'service.instance.id': randomUUID(),
    ...settings.resource_attributes,
    'service.name': settings.service_name,
    ...keyValueList(env, 'OTEL_RESOURCE_ATTRIBUTES'),
    ...(service === undefined ? {} : { 'service.name': service }),
  }
}

/**
 * OTEL_TRACES_SAMPLER (with OTEL_TRACES_SAMPLER_ARG for the ratio samplers, 1 when unset), else the
 * file's `trace_sample_ratio` as parentbased_traceidratio: a client's traceparent keeps its decision.
 */
export function resolveSampler(settings: TelemetryConfig, env: Env): SamplerChoice {
  const name = read(env, 'OTEL_TRACES_SAMPLER')
  if (name === undefined) return { name: 'parentbased_traceidratio', ratio: settings.trace_sample_ratio }
  if (!isOneOf(SAMPLERS, name)) throw invalid('OTEL_TRACES_SAMPLER', name, SAMPLERS.join(', '))
  if (!name.endsWith('traceidratio')) return { name, ratio: 1 }
  const arg = read(env, 'OTEL_TRACES_SAMPLER_ARG')
  const ratio = arg === undefined ? 1 : Number(arg)
  if (!(ratio >= 0 && ratio <= 1)) throw invalid('OTEL_TRACES_SAMPLER_ARG', arg ?? '', 'a number from 0 to 1')
  return { name, ratio }
}

/**
 * Where each signal goes. Exporters: OTEL_<SIGNAL>_EXPORTER (otlp, console, none), default otlp;
 * TUFT_OTEL_DEBUG=1 adds console, and replaces a default OTLP export when no endpoint is named anywhere
 * (debugging on a laptop does not spam connection errors). Endpoint: OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT
 * (used as is), else the base TUFT_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, `otlp_endpoint`, the
 * OpenTelemetry default for the protocol; HTTP appends /v1/<signal> to a base. Protocol:
 * OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, `otlp_protocol`. Headers, timeouts,
 * compression and certificates are the OTLP exporters' own (OTEL_EXPORTER_OTLP_[<SIGNAL>_]HEADERS …);
 * the header lists are checked here.
 */
export function resolveExports(settings: TelemetryConfig, env: Env): Record<Signal, SignalExport> {
  const debug = env.TUFT_OTEL_DEBUG === '1'
  const base =
    endpoint(env, 'TUFT_OTLP_ENDPOINT') ??
    endpoint(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') ??
    checkedEndpoint('telemetry.otlp_endpoint', settings.otlp_endpoint?.trim() || undefined)
  keyValueList(env, 'OTEL_EXPORTER_OTLP_HEADERS')
  const plan = (signal: Signal): SignalExport => {
    const upper = signal.toUpperCase()
    keyValueList(env, `OTEL_EXPORTER_OTLP_${upper}_HEADERS`)
    const url = endpoint(env, `OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`)
    const named = exporters(env, signal)
    const console = debug || named.includes('console')
    const protocol =
      protocolOf(env, `OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`) ??
      protocolOf(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ??
      settings.otlp_protocol
    const otlp =
      named.includes('otlp') && (url !== undefined || base !== undefined || !debug || named.explicit)
    if (!otlp) return { otlp: null, console }
    const root = (base ?? DEFAULT_ENDPOINT[protocol]).replace(/\/+$/, '')
    return {
      otlp: { url: url ?? (protocol === 'grpc' ? root : `${root}/v1/${signal}`), protocol },
      console,
    }
  }
  return { traces: plan('traces'), metrics: plan('metrics'), logs: plan('logs') }
}

/** OTEL_METRIC_EXPORT_INTERVAL (ms), else TuFT's 15 s. */
export function metricExportInterval(env: Env): number {
  const value = read(env, 'OTEL_METRIC_EXPORT_INTERVAL')
  if (value === undefined) return METRIC_EXPORT_INTERVAL_MS
  const ms = Number(value)
  if (!Number.isInteger(ms) || ms <= 0)
    throw invalid('OTEL_METRIC_EXPORT_INTERVAL', value, 'milliseconds > 0')
  return ms
}

/** The exporters OTEL_<SIGNAL>_EXPORTER names; `explicit` when the variable is set. */
function exporters(env: Env, signal: Signal): string[] & { explicit: boolean } {
  const name = `OTEL_${signal.toUpperCase()}_EXPORTER`
  const value = read(env, name)
  const list = value === undefined ? ['otlp'] : value.split(',').map((s) => s.trim())
  for (const exporter of list) {
    if (exporter === 'otlp' || exporter === 'console' || exporter === 'none') continue
    const hint =
      exporter === 'prometheus'
        ? ' (TuFT serves Prometheus on its API port: telemetry.prometheus.enabled)'
        : ''
    throw invalid(name, value ?? '', `otlp, console or none${hint}`)
  }
  return Object.assign(list, { explicit: value !== undefined })
}

function protocolOf(env: Env, name: string): OtlpProtocol | undefined {
  const value = read(env, name)
  if (value === undefined) return undefined
  if (!isOneOf(PROTOCOLS, value)) throw invalid(name, value, PROTOCOLS.join(', '))
  return value
}

function endpoint(env: Env, name: string): string | undefined {
  return checkedEndpoint(name, read(env, name))
}

function checkedEndpoint(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  let url: URL | undefined
  try {
    url = new URL(value)
  } catch {}
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:')
    throw invalid(name, value, 'an http:// or https:// URL')
  return value
}

/**
 * A `key=value,key=value` list (W3C Baggage form, values percent-encoded), as OTEL_RESOURCE_ATTRIBUTES
 * and the OTLP header variables are written; OpenTelemetry drops a malformed one with a debug line.
 */
function keyValueList(env: Env, name: string): Record<string, string> {
  const value = read(env, name)
  const out: Record<string, string> = {}
  if (value === undefined) return out
  for (const entry of value.split(',')) {
    if (entry.trim() === '') continue
    const eq = entry.indexOf('=')
    const key = entry.slice(0, eq).trim()
    let decoded: string | undefined
    try {
      decoded = decodeURIComponent(entry.slice(eq + 1).trim())
    } catch {}
    if (eq < 1 || key === '' || decoded === undefined)
      throw invalid(name, value, 'key=value pairs separated by commas, values percent-encoded')
    out[key] = decoded
  }
  return out
}

/** A variable's value; empty counts as unset, as the OpenTelemetry specification says. */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value)
}

function invalid(name: string, value: string, expected: string) {
  return tuftError('TUFT_CONFIG', `telemetry: ${name}='${value}' is invalid: expected ${expected}`)
}
