// The config plugin: makes the loaded (frozen) configuration and the app's domain event bus available
// to every other plugin. Everything else depends on it.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { TuftConfig } from '../config/schema.js'
import { EventBus } from '../core/events.js'

declare module 'fastify' {
  interface FastifyInstance {
    tuftConfig: TuftConfig
    /** Directory that relative engine module specifiers resolve from (the config file's). */
    configDir: string
    events: EventBus
  }
}

export interface ConfigPluginOptions {
  config: TuftConfig
  configDir: string
  events?: EventBus
}

async function configPlugin(app: FastifyInstance, opts: ConfigPluginOptions): Promise<void> {
  app.decorate('tuftConfig', opts.config)
  app.decorate('configDir', opts.configDir)
  app.decorate('events', opts.events ?? new EventBus())
}

export default fp(configPlugin, { name: 'tuft-config', fastify: '5.x' })
