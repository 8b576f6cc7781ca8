// The telemetry plugin: starts OpenTelemetry from the config (or takes an injected instance), adds the
// HTTP hooks, subscribes to the domain events, connects log export, serves the Prometheus scrape on
// the app's own port, and flushes everything when the app closes. With telemetry off it only
// decorates `app.telemetry = null`: no hook, route or listener is added.

import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { TuftConfig } from '../../config/schema.js'
import type { EventBus } from '../../core/events.js'
import { installHttpTelemetry } from './http.js'
import { attachLogExport } from './logging.js'
import { observeEvents } from './observe.js'
import { PROMETHEUS_CONTENT_TYPE } from './prometheus.js'
import { createTelemetry, type Telemetry } from './sdk.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** null when telemetry and the Prometheus endpoint are both off. */
    telemetry: Telemetry | null
  }
}

export interface TelemetryPluginOptions {
  /** An already started instance (tests inject one with in-memory exporters); null forces off. */
  telemetry?: Telemetry | null
}

/** The user plugins/auth resolved for the request (its `userId` decorator), never the credential. */
function requestUser(request: FastifyRequest): string | undefined {
  return (request as { userId?: string | null }).userId ?? undefined
}

async function telemetryPlugin(app: FastifyInstance, opts: TelemetryPluginOptions): Promise<void> {
  const config = app.getDecorator<TuftConfig>('tuftConfig').telemetry
  const telemetry = opts.telemetry !== undefined ? opts.telemetry : await createTelemetry(config)
  app.decorate('telemetry', telemetry)
  if (telemetry === null) return

  const stopObserving = observeEvents(app.getDecorator<EventBus>('events'), telemetry)
  const detachLogs =
    telemetry.otelLogger === null
      ? null
      : attachLogExport(app.log, telemetry.otelLogger, telemetry.backlog, {
          requestLines: config.export_request_logs,
        })
  installHttpTelemetry(app, telemetry, requestUser)

  const scrape = telemetry.scrape
  if (scrape !== null) {
    // Public like any scrape target: the exposition carries user ids but no credentials or payloads.
    app.get(
      config.prometheus.path,
      { logLevel: 'warn', config: { public: true } },
      async (_request, reply) => {
        reply.header('content-type', PROMETHEUS_CONTENT_TYPE)
        return scrape.scrape()
      },
    )
  }

  app.addHook('onClose', async () => {
    stopObserving()
    await telemetry.shutdown()
    // After the flush, so the last lines of the shutdown still reach the exporter.
    detachLogs?.()
  })
}

export default fp(telemetryPlugin, { name: 'tuft-telemetry', fastify: '5.x', dependencies: ['tuft-config'] })
