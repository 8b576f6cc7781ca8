// Where exported telemetry goes: the config's telemetry section refined by the environment
// (TUFT_OTLP_ENDPOINT, TUFT_OTEL_DEBUG).

import type { TelemetryConfig } from '../../config/schema.js'
import { tuftError } from '../../core/errors.js'

export type OtlpProtocol = TelemetryConfig['otlp_protocol']

export interface ExportPlan {
  /** Base endpoint (no signal path), or null when only the console receives telemetry. */
  endpoint: string | null
  protocol: OtlpProtocol
  console: boolean
}

/** The OpenTelemetry default collector endpoints, used when nothing names one. */
const DEFAULT_ENDPOINT: Record<OtlpProtocol, string> = {
  'http/protobuf': 'http://localhost:4318',
  grpc: 'http://localhost:4317',
}

/**
 * Where exported telemetry goes. TUFT_OTLP_ENDPOINT overrides `otlp_endpoint` (deployment wins over
 * the file). TUFT_OTEL_DEBUG=1 adds console exporters; with no endpoint configured anywhere it
 * replaces OTLP, so debugging on a laptop does not spam connection errors. Otherwise OTLP goes to the
 * OpenTelemetry default endpoint for the protocol.
 */
export function resolveExport(settings: TelemetryConfig, env: NodeJS.ProcessEnv): ExportPlan {
  const configured = nonEmpty(env.TUFT_OTLP_ENDPOINT) ?? nonEmpty(settings.otlp_endpoint)
  const debug = env.TUFT_OTEL_DEBUG === '1'
  if (configured !== undefined) checkEndpoint(configured)
  const endpoint = configured ?? (debug ? null : DEFAULT_ENDPOINT[settings.otlp_protocol])
  return {
    endpoint: endpoint === null ? null : endpoint.replace(/\/+$/, ''),
    protocol: settings.otlp_protocol,
    console: debug,
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

function checkEndpoint(endpoint: string): void {
  let url: URL
  try {
    url = new URL(endpoint)
  } catch (cause) {
    throw tuftError('TUFT_CONFIG', `telemetry: OTLP endpoint '${endpoint}' is not a URL`, { cause })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw tuftError('TUFT_CONFIG', `telemetry: OTLP endpoint '${endpoint}' must be http:// or https://`)
  }
}
