// The persistence plugin: opens the configured Store (memory, file or redis) before the app is ready
// and closes it last; tests may inject a Store, which the plugin then leaves open.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import type { Store } from '../core/persistence.js'
import { createStore } from '../persistence/index.js'
import { checkConfigSignature } from './config-signature.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

export interface PersistencePluginOptions {
  store?: Store
}

async function persistencePlugin(app: FastifyInstance, opts: PersistencePluginOptions): Promise<void> {
  const store =
    opts.store ??
    (await createStore(
      { ...app.tuftConfig.persistence },
      { log: app.log as unknown as Logger, events: app.events },
    ))
  // Persisted state is only restored under the configuration that wrote it.
  try {
    await checkConfigSignature(store, app.tuftConfig, app.log as unknown as Logger)
  } catch (err) {
    if (!opts.store) await store.close()
    throw err
  }
  app.decorate('store', store)
  if (!opts.store) app.addHook('onClose', async () => store.close())
}

export default fp(persistencePlugin, {
  name: 'tuft-persistence',
  fastify: '5.x',
  dependencies: ['tuft-config'],
})
