// The built-in engine providers, registered lazily so an engine's native code loads only when a
// model's config chooses it.

import type { EngineProvider } from '../core/engine.js'
import type { EngineRegistry } from '../core/registry.js'

/** Kept in a variable so this file typechecks before the native engine is built. */
const NATIVE_MODULE = './native/index.js'

export function registerBuiltinEngines(registry: EngineRegistry): void {
  registry.registerLazy(
    'native',
    async () => ((await import(NATIVE_MODULE)) as { default: EngineProvider }).default,
  )
  registry.registerLazy('vllm', async () => (await import('./vllm/index.js')).default)
}
