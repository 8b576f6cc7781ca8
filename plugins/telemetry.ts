// The telemetry plugin: starts OpenTelemetry from the config (or takes an injected instance), adds the
// HTTP hooks, subscribes to the domain events, connects log export, serves the Prometheus scrape on
// the app's own port, and flushes everything when the app closes. With telemetry off it only
// decorates `app.telemetry = null`: no hook, route or listener is added.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { TelemetryConfig } from '../config/schema.js'
import type { EventBus } from '../core/events.js'
import { installHttpTelemetry, type UserOf } from '../core/telemetry/http.js'
import { attachLogExport } from '../core/telemetry/logging.js'
import { observeEvents } from '../core/telemetry/observe.js'
import { PROMETHEUS_CONTENT_TYPE } from '../core/telemetry/prometheus.js'
import { createTelemetry, type Telemetry } from '../core/telemetry/sdk.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** null when telemetry and the Prometheus endpoint are both off. */
    telemetry: Telemetry | null
  }
}

export interface TelemetryPluginOptions {
  config: TelemetryConfig
  /** The app's domain event bus (futures, usage, queues, store latency). */
  events?: EventBus
  /** An already started instance (tests inject one with in-memory exporters); null forces off. */
  telemetry?: Telemetry | null
  /** The authenticated user of a request, for the span's user_id. */
  userOf?: UserOf
}

async function telemetryPlugin(app: FastifyInstance, opts: TelemetryPluginOptions): Promise<void> {
  const telemetry = opts.telemetry !== undefined ? opts.telemetry : await createTelemetry(opts.config)
  app.decorate('telemetry', telemetry)
  if (telemetry === null) return

  const stopObserving = opts.events === undefined ? null : observeEvents(opts.events, telemetry)
  const detachLogs = telemetry.otelLogger === null ? null : attachLogExport(app.log, telemetry.otelLogger)
  installHttpTelemetry(app, telemetry, opts.userOf ?? (() => undefined))

  const scrape = telemetry.scrape
  if (scrape !== null) {
    app.get(opts.config.prometheus.path, { logLevel: 'warn' }, async (_request, reply) => {
      reply.header('content-type', PROMETHEUS_CONTENT_TYPE)
      return scrape.scrape()
    })
  }

  app.addHook('onClose', async () => {
    stopObserving?.()
    await telemetry.shutdown()
    // After the flush, so the last lines of the shutdown still reach the exporter.
    detachLogs?.()
  })
}

export default fp(telemetryPlugin, { name: 'telemetry', fastify: '5.x' })
