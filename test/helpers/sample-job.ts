// A SampleJob for tests and benchmarks that call an engine directly: the conformance suite's (greedy, one
// sample, no stops, no prompt logprobs) with 8 new tokens, unless `over` says otherwise.

import type { SampleJob } from '../../core/engine.js'
import { sampleJob as conformanceJob } from '../../engines/conformance/harness.js'

export function sampleJob(prompt: ArrayLike<number>, over: Partial<SampleJob> = {}): SampleJob {
  return conformanceJob(Int32Array.from(prompt), { maxTokens: 8, ...over })
}
