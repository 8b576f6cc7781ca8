// Engine providers by name (ARCHITECTURE §4, STYLE "pluggable implementations"): built-ins are
// registered (lazily, so heavy engines load only when chosen); any other name is an npm module
// specifier or file path, resolved relative to the config file, whose default export is a provider.

import { createRequire } from 'node:module'
import { isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { EngineProvider } from './engine.js'
import { tuftError } from './errors.js'

type Entry = { provider: EngineProvider } | { load: () => Promise<EngineProvider> }

export function isEngineProvider(value: unknown): value is EngineProvider {
  const p = value as Partial<EngineProvider> | null
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.name === 'string' &&
    Array.isArray(p.capabilities) &&
    typeof p.configSchema === 'object' &&
    (typeof p.createTraining === 'function' || typeof p.createSampling === 'function')
  )
}

export class EngineRegistry {
  private readonly entries = new Map<string, Entry>()

  register(provider: EngineProvider): void {
    this.add(provider.name, { provider })
  }

  /** A built-in whose module is imported only when a model names it. */
  registerLazy(name: string, load: () => Promise<EngineProvider>): void {
    this.add(name, { load })
  }

  names(): string[] {
    return [...this.entries.keys()]
  }

  /** The provider called `name`, or the default export of module `name` (resolved from `fromDir`). */
  async resolve(name: string, fromDir: string): Promise<EngineProvider> {
    let entry = this.entries.get(name)
    if (!entry) {
      entry = { provider: await importProvider(name, fromDir, this.names()) }
      this.entries.set(name, entry)
    }
    if ('provider' in entry) return entry.provider
    const provider = await entry.load()
    if (!isEngineProvider(provider)) {
      throw tuftError('TUFT_CONFIG', `Built-in engine '${name}' did not load a valid provider`)
    }
    this.entries.set(name, { provider })
    return provider
  }

  private add(name: string, entry: Entry): void {
    if (this.entries.has(name))
      throw tuftError('TUFT_CONFIG', `Engine provider '${name}' is registered twice`)
    this.entries.set(name, entry)
  }
}

async function importProvider(
  specifier: string,
  fromDir: string,
  builtins: string[],
): Promise<EngineProvider> {
  const isPath = specifier.startsWith('.') || isAbsolute(specifier)
  let url: string
  try {
    url = isPath
      ? pathToFileURL(resolve(fromDir, specifier)).href
      : pathToFileURL(createRequire(join(fromDir, 'tuft.config.js')).resolve(specifier)).href
  } catch {
    url = specifier
  }
  let mod: { default?: unknown }
  try {
    mod = (await import(url)) as { default?: unknown }
  } catch (err) {
    throw tuftError(
      'TUFT_CONFIG',
      `Unknown engine provider '${specifier}': not a built-in (${builtins.join(', ')}) and not a loadable module (${(err as Error).message})`,
      { cause: err },
    )
  }
  if (!isEngineProvider(mod.default)) {
    throw tuftError('TUFT_CONFIG', `Module '${specifier}' does not default-export an engine provider`)
  }
  return mod.default
}
