// OTLP trace exporters that encode with FastProtobufTraceSerializer (every HTTP request exports a
// span, and the official serializer cost ~2.6× more per span). Everything else — transport, retries,
// timeouts, OTEL_EXPORTER_OTLP_* headers and compression — is the OpenTelemetry exporter's own.

import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base'
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http'
import { TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import { FastProtobufTraceSerializer } from './otlp-span-serializer.js'

/** OTLP http/protobuf to `url` (the full URL, e.g. http://collector:4318/v1/traces). */
export class OtlpHttpSpanExporter extends OTLPExporterBase<ReadableSpan[]> implements SpanExporter {
  constructor(url: string) {
    const options = convertLegacyHttpOptions({ url }, 'TRACES', 'v1/traces', {
      'Content-Type': 'application/x-protobuf',
    })
    super(
      createOtlpHttpExportDelegate(
        options,
        FastProtobufTraceSerializer,
        'otlp_http_span_exporter',
        TraceExporterMetricsHelper,
        undefined,
      ),
    )
  }
}

/** OTLP over gRPC to `url`; the gRPC stack is loaded only when this protocol is chosen. */
export async function otlpGrpcSpanExporter(url: string): Promise<SpanExporter> {
  const grpc = await import('@opentelemetry/otlp-grpc-exporter-base')
  const delegate = grpc.createOtlpGrpcExportDelegate(
    grpc.convertLegacyOtlpGrpcOptions({ url }, 'TRACES'),
    FastProtobufTraceSerializer,
    'otlp_grpc_span_exporter',
    TraceExporterMetricsHelper,
    undefined,
    'TraceExportService',
    '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  )
  return new OTLPExporterBase<ReadableSpan[]>(delegate)
}
