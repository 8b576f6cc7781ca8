// Engine providers by name (ARCHITECTURE §4, STYLE "pluggable implementations"): built-ins are
// registered (lazily, so heavy engines load only when chosen); any other name is an npm module
// specifier or file path, resolved relative to the config file, whose default export is a provider.

import { createRequire } from 'node:module'
import { isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Value } from '@sinclair/typebox/value'
import { type EngineCapabilities, type EngineProvider, LOSS_FNS } from './engine.js'
import { tuftError } from './errors.js'

type Entry = { provider: EngineProvider } | { load: () => Promise<EngineProvider> }

/** What keeps `value` from being an engine provider; empty when it is one. */
export function providerProblems(value: unknown): string[] {
  const p = value as Partial<EngineProvider> | null
  if (typeof p !== 'object' || p === null) return ['not an object']
  const problems: string[] = []
  if (typeof p.name !== 'string' || p.name === '') problems.push('name must be a non-empty string')
  if (typeof p.configSchema !== 'object' || p.configSchema === null)
    problems.push('configSchema must be a TypeBox schema')
  if (typeof p.createTraining !== 'function' && typeof p.createSampling !== 'function')
    problems.push('createTraining or createSampling must be a function')
  const c = p.capabilities as Partial<EngineCapabilities> | undefined
  if (typeof c !== 'object' || c === null || Array.isArray(c)) {
    problems.push('capabilities must be an object (snapshots, sampleFromTrainingSnapshot, losses, ...)')
    return problems
  }
  if (c.snapshots !== 'shared-memory' && c.snapshots !== 'peft-files')
    problems.push("capabilities.snapshots must be 'shared-memory' or 'peft-files'")
  if (typeof c.sampleFromTrainingSnapshot !== 'boolean')
    problems.push('capabilities.sampleFromTrainingSnapshot must be a boolean')
  else if (c.sampleFromTrainingSnapshot && c.snapshots !== 'shared-memory')
    problems.push("capabilities.sampleFromTrainingSnapshot needs snapshots: 'shared-memory'")
  if (!Array.isArray(c.losses) || !c.losses.every((l) => (LOSS_FNS as readonly unknown[]).includes(l)))
    problems.push(`capabilities.losses must list losses among ${LOSS_FNS.join(', ')}`)
  else if (typeof p.createTraining === 'function' && c.losses.length === 0)
    problems.push('capabilities.losses is empty but the provider trains')
  if (!Number.isInteger(c.maxLoraRank) || (c.maxLoraRank as number) < 1)
    problems.push('capabilities.maxLoraRank must be a positive integer')
  if (!Array.isArray(c.architectures) || !c.architectures.every((a) => typeof a === 'string'))
    problems.push('capabilities.architectures must be a list of strings')
  return problems
}

/** A provider's options with its schema's defaults applied, or a TUFT_CONFIG error listing what is wrong. */
export function providerOptions(
  provider: EngineProvider,
  options: Record<string, unknown>,
  what: string,
): unknown {
  const withDefaults = Value.Default(provider.configSchema, structuredClone(options))
  const errors = [...Value.Errors(provider.configSchema, withDefaults)]
  if (errors.length > 0) {
    const list = errors.slice(0, 5).map((e) => `${e.path || '/'}: ${e.message}`)
    throw tuftError(
      'TUFT_CONFIG',
      `${what}: invalid options for engine '${provider.name}': ${list.join('; ')}`,
    )
  }
  return withDefaults
}

/** `value` as a provider, or a TUFT_CONFIG error naming what is wrong with it. */
function checked(value: unknown, what: string): EngineProvider {
  const problems = providerProblems(value)
  if (problems.length > 0) throw tuftError('TUFT_CONFIG', `${what} ${problems.join('; ')}`)
  return value as EngineProvider
}

export class EngineRegistry {
  private readonly entries = new Map<string, Entry>()

  register(provider: EngineProvider): void {
    this.add(provider.name, { provider: checked(provider, `Engine provider '${provider.name}' is invalid:`) })
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
    const provider = checked(await entry.load(), `Built-in engine '${name}' is invalid:`)
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
  return checked(mod.default, `Module '${specifier}' does not default-export an engine provider:`)
}
