// The engines plugin: one ModelHost per configured base model (or the embedded tiny model when none
// is configured), engines chosen by provider name from the registry and wrapped once for load accounting
// and telemetry.
// Models load in the background after boot (bounded boot); their progress goes to the log.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { ModelConfig } from '../config/schema.js'
import { EngineRegistry } from '../core/registry.js'
import { ModelHost, ModelHosts } from '../core/services/models.js'
import { registerBuiltinEngines } from '../engines/builtin.js'
import { EMBEDDED_MODEL_NAME, EMBEDDED_TOKENIZER_ID, ensureEmbeddedModel } from '../engines/embedded-model.js'
import { instrumentSamplingEngine, instrumentTrainingEngine } from './telemetry/engines.js'

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelHosts
  }
}

export interface EnginesPluginOptions {
  /** Providers to choose from; default: the built-ins. */
  registry?: EngineRegistry
}

/** Served when supported_models is empty: a tiny Qwen3-architecture model generated on first start. */
function embeddedModel(cacheDir: string): ModelConfig {
  return {
    model_name: EMBEDDED_MODEL_NAME,
    model_path: `${cacheDir}/(generated on first start)`,
    tokenizer_id: EMBEDDED_TOKENIZER_ID,
    tensor_parallel_size: 1,
    capabilities: ['training', 'sampling'],
    max_lora_rank: 128,
    training: { provider: 'native', options: {} },
    sampling: { provider: 'native', options: {} },
  }
}

async function enginesPlugin(app: FastifyInstance, opts: EnginesPluginOptions): Promise<void> {
  const config = app.tuftConfig
  let registry = opts.registry
  if (!registry) {
    registry = new EngineRegistry()
    registerBuiltinEngines(registry)
  }
  const telemetry = app.hasDecorator('telemetry') ? app.telemetry : null
  const embedded = config.supported_models.length === 0
  const configs = embedded ? [embeddedModel(config.model_cache_dir)] : config.supported_models
  const hosts = configs.map(
    (model) =>
      new ModelHost({
        config: model,
        registry: registry,
        configDir: app.configDir,
        log: app.log as unknown as Logger,
        events: app.events,
        maxBatchTokens: config.server.max_batch_tokens,
        userWeight: (user) => app.limits.userWeight(user),
        wrapTraining: (engine, name) =>
          instrumentTrainingEngine(app.serverLoad.track(engine, name, 'training'), telemetry, name),
        wrapSampling: (engine, name) =>
          instrumentSamplingEngine(app.serverLoad.track(engine, name, 'sampling'), telemetry, name),
        ...(embedded
          ? {
              prepare: async () => {
                app.log.info({ dir: config.model_cache_dir }, 'preparing the embedded model')
                return ensureEmbeddedModel(config.model_cache_dir)
              },
            }
          : {}),
      }),
  )
  const models = new ModelHosts(hosts)
  app.decorate('models', models)
  // Failures are logged by each host and answered as 503 on requests; the CLI fails the boot on them.
  app.addHook('onReady', async () => {
    models.loadAll().catch(() => {})
  })
  app.addHook('onClose', async () => models.close())
}

export default fp(enginesPlugin, {
  name: 'tuft-engines',
  fastify: '5.x',
  dependencies: ['tuft-config', 'tuft-server-load', 'tuft-limits'],
})
