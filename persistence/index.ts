// Store providers by name (ARCHITECTURE §6): the built-ins under their names and TuFT's mode names,
// matched case-insensitively, and createStore() that turns the config's persistence section into a Store.

import type { TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { tuftError } from '../core/errors.js'
import type { Store, StoreContext, StoreProvider } from '../core/persistence.js'
import { fileStoreProvider } from './file.js'
import { memoryStoreProvider } from './memory.js'
import { ObservedStore } from './observed.js'
import { redisStoreProvider } from './redis.js'

/** The config's `persistence:` block: a mode plus options, some of which belong to other services. */
export interface PersistenceSection {
  mode?: string
  [option: string]: unknown
}

/** The built-in providers; redis imports ioredis only when it creates a store. */
export function builtinStoreProviders(): StoreProvider[] {
  return [memoryStoreProvider, fileStoreProvider, redisStoreProvider]
}

export class StoreRegistry {
  private readonly byName = new Map<string, StoreProvider>()

  register(provider: StoreProvider): this {
    const names = new Set([provider.name, ...provider.aliases].map((n) => n.toLowerCase()))
    for (const name of names) {
      const taken = this.byName.get(name)
      if (taken !== undefined) {
        throw tuftError(
          'TUFT_CONFIG',
          `Store mode '${name}' of provider '${provider.name}' is already taken by '${taken.name}'`,
        )
      }
    }
    for (const name of names) this.byName.set(name, provider)
    return this
  }

  /** The provider for a mode name (any case); unknown names fail listing the known ones. */
  get(mode: string): StoreProvider {
    const provider = this.byName.get(mode.toLowerCase())
    if (provider === undefined) {
      throw tuftError(
        'TUFT_CONFIG',
        `Unknown persistence mode '${mode}'; known modes: ${this.modes().join(', ')}`,
      )
    }
    return provider
  }

  modes(): string[] {
    return [...this.byName.keys()].sort()
  }
}

export function defaultStoreRegistry(): StoreRegistry {
  const registry = new StoreRegistry()
  for (const provider of builtinStoreProviders()) registry.register(provider)
  return registry
}

/**
 * Creates the configured store. Only the options the chosen provider's schema declares are taken from
 * the section (the rest, such as future_ttl_seconds, belong to other services); they are checked
 * against that schema with its defaults applied. With ctx.events, every operation reports its latency.
 */
export async function createStore(
  section: PersistenceSection,
  ctx: StoreContext,
  registry: StoreRegistry = defaultStoreRegistry(),
): Promise<Store> {
  const provider = registry.get(section.mode ?? 'memory')
  const options = providerOptions(provider.configSchema, section)
  const withDefaults = Value.Default(provider.configSchema, options)
  const problems = [...Value.Errors(provider.configSchema, withDefaults)]
  if (problems.length > 0) {
    const detail = problems
      .slice(0, 5)
      .map((p) => `persistence${p.path.replaceAll('/', '.')}: ${p.message}`)
      .join('; ')
    throw tuftError('TUFT_CONFIG', `Invalid options for persistence mode '${provider.name}': ${detail}`)
  }
  const store = await provider.create(withDefaults, ctx)
  ctx.log.info({ store: store.name }, 'persistence store ready')
  return ctx.events === undefined ? store : new ObservedStore(store, ctx.events)
}

function providerOptions(schema: TSchema, section: PersistenceSection): Record<string, unknown> {
  const declared = (schema as { properties?: Record<string, unknown> }).properties ?? {}
  const options: Record<string, unknown> = {}
  for (const key of Object.keys(declared)) {
    if (section[key] !== undefined) options[key] = Value.Clone(section[key])
  }
  return options
}
