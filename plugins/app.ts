// The app factory (STYLE "the app is separate from the server"): builds the Fastify app from a loaded
// config and optional injected dependencies, and never listens. bin/cli.ts and the tests call it.

import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { TuftConfig } from '../config/schema.js'
import type { EventBus } from '../core/events.js'
import type { Store } from '../core/persistence.js'
import type { EngineRegistry } from '../core/registry.js'
import adminStatusPlugin from './admin-status.js'
import authPlugin from './auth.js'
import configPlugin from './config.js'
import consolePlugin from './console/index.js'
import contentParsersPlugin from './content-parsers.js'
import enginesPlugin from './engines.js'
import errorHandlerPlugin from './error-handler.js'
import limitsPlugin from './limits.js'
import modelTextsPlugin from './model-text.js'
import oaiApi from './oai/index.js'
import persistencePlugin from './persistence.js'
import readinessRoutes from './readiness.js'
import serverLoadPlugin from './server-load.js'
import servicesPlugin from './services.js'
import telemetryPlugin from './telemetry/index.js'
import { buildLoggerOptions } from './telemetry/logging.js'
import tinkerApi, { API_PREFIX } from './tinker/index.js'
import tokenizePlugin from './tokenize.js'
import usagePlugin from './usage.js'

export interface AppDeps {
  /** A Store to use instead of the configured one (left open on close). */
  store?: Store
  /** Engine providers to choose from (tests register doubles); default: the built-ins. */
  registry?: EngineRegistry
  events?: EventBus
  /** Where relative engine module specifiers resolve from; default: the working directory. */
  configDir?: string
  /** A pino logger to use; default: one at config.log_level. */
  logger?: Logger
}

export async function buildApp(config: TuftConfig, deps: AppDeps = {}): Promise<FastifyInstance> {
  const logging = deps.logger
    ? { loggerInstance: deps.logger as unknown as FastifyBaseLogger }
    : { logger: buildLoggerOptions(config) }
  const app: FastifyInstance = Fastify({
    bodyLimit: config.server.body_limit_bytes,
    // Bounded boot: model weights load in the background after ready (plugins/engines.ts).
    pluginTimeout: 10_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 1000 },
    // The SDK's stop field is a union of string / string[] / int[] (spec §5.7).
    ajv: { customOptions: { allowUnionTypes: true } },
    ...logging,
  })

  // Cross-cutting plugins, in dependency order (each declares its dependencies).
  await app.register(configPlugin, {
    config,
    configDir: deps.configDir ?? process.cwd(),
    ...(deps.events ? { events: deps.events } : {}),
  })
  await app.register(errorHandlerPlugin)
  await app.register(telemetryPlugin)
  await app.register(contentParsersPlugin)
  await app.register(persistencePlugin, deps.store ? { store: deps.store } : {})
  // Before the engines: the users' fair-share weights for the model hosts' schedulers are decided here.
  await app.register(limitsPlugin)
  await app.register(serverLoadPlugin)
  await app.register(enginesPlugin, deps.registry ? { registry: deps.registry } : {})
  await app.register(authPlugin)
  await app.register(usagePlugin)
  await app.register(servicesPlugin)
  // Routes.
  await app.register(tinkerApi, { prefix: API_PREFIX })
  await app.register(adminStatusPlugin)
  await app.register(modelTextsPlugin)
  await app.register(tokenizePlugin)
  await app.register(consolePlugin)
  await app.register(oaiApi)
  await app.register(readinessRoutes, { prefix: API_PREFIX })
  return app
}
