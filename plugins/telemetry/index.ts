// The telemetry plugin: starts OpenTelemetry from the config (or takes an injected instance), adds the
// HTTP hooks, subscribes to the domain events, connects log export, serves the Prometheus scrape on
// the app's own port (to operators), and flushes everything when the app closes. With telemetry off
// it only decorates `app.telemetry = null`: no hook, route or listener is added.

import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { TuftConfig } from '../../config/schema.js'
import { tuftError } from '../../core/errors.js'
import type { EventBus } from '../../core/events.js'
import { isOperator, userOf } from '../auth.js'
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
  const tuftConfig = app.getDecorator<TuftConfig>('tuftConfig')
  const config = tuftConfig.telemetry
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
    // Operators only: the exposition has series per user (ids, tokens, request counts) that no other
    // user may read. Prometheus sends the key with `authorization: {credentials: tml-…}`.
    app.get(config.prometheus.path, { logLevel: 'warn' }, async (request, reply) => {
      if (!isOperator(tuftConfig, userOf(request)))
        throw tuftError(
          'TUFT_FORBIDDEN',
          'The Prometheus scrape needs an operator API key (config operators)',
        )
      reply.header('content-type', PROMETHEUS_CONTENT_TYPE)
      return scrape.scrape()
    })
  }

  app.addHook('onClose', async () => {
    stopObserving()
    await telemetry.shutdown()
    // After the flush, so the last lines of the shutdown still reach the exporter.
    detachLogs?.()
  })
}

export default fp(telemetryPlugin, { name: 'tuft-telemetry', fastify: '5.x', dependencies: ['tuft-config'] })
