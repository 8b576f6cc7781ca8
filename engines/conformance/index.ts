// The engine conformance suite (node:test): one function a provider's own test file calls to check
// every promise of the engine contract (core/engine.ts). What runs follows the provider's declared
// capabilities, never the caller's guess: a role it lacks, a loss it does not declare or an
// architecture it cannot load is skipped with the reason in the test output.

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { EngineProvider } from '../../core/engine.js'
import { providerOptions, providerProblems } from '../../core/registry.js'
import { adaptersSuite } from './adapters.js'
import type { Target } from './harness.js'
import { lifecycleSuite } from './lifecycle.js'
import { packagedReferences, referenceSuite } from './reference.js'
import { samplingSuite } from './sampling.js'
import { trainingSuite } from './training.js'

export interface EngineConformanceOptions {
  /** The provider's options, as under `training.options` in tuft.yaml (its schema's defaults apply). */
  options?: Record<string, unknown>
  /** The model directory the behaviour checks open; default: the packaged tiny Qwen3 reference model. */
  modelPath?: string
  /** Reference fixture directories (as in test/fixtures/reference); default: the packaged ones. */
  references?: string[]
  /** Shown in the test names; default: the provider's name. */
  label?: string
}

/** Declares the suite's tests for `provider` (call it at the top level of a node:test file). */
export function engineConformance(provider: EngineProvider, o: EngineConformanceOptions = {}): void {
  describe(`engine conformance: ${o.label ?? provider.name}`, () => {
    const problems = providerProblems(provider)
    it('declares a name, an option schema, capabilities and factories', () => {
      assert.deepEqual(problems, [], `the provider is not valid: ${problems.join('; ')}`)
    })
    if (problems.length > 0) return
    const references = o.references ?? packagedReferences()
    const target: Target = {
      provider,
      options: providerOptions(provider, o.options ?? {}, 'engine conformance'),
      modelPath: o.modelPath ?? `${references.find((r) => r.endsWith('qwen3')) ?? references[0]}/model`,
      maxLoraRank: Math.min(8, provider.capabilities.maxLoraRank),
    }
    if (provider.createTraining) trainingSuite(target)
    if (provider.createSampling) samplingSuite(target)
    if (provider.createTraining && provider.createSampling) adaptersSuite(target)
    lifecycleSuite(target)
    referenceSuite(target, references)
  })
}
