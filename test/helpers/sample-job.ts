// A SampleJob for tests and benchmarks that call an engine directly: greedy, one sample, no stops and
// no prompt logprobs unless `over` says otherwise.

import type { SampleJob } from '../../core/engine.js'

export function sampleJob(prompt: ArrayLike<number>, over: Partial<SampleJob> = {}): SampleJob {
  return {
    adapter: null,
    prompt: Int32Array.from(prompt),
    numSamples: 1,
    maxTokens: 8,
    temperature: 0,
    topK: -1,
    topP: 1,
    seed: 0n,
    stopTokens: [],
    stopStrings: [],
    promptLogprobs: false,
    topkPromptLogprobs: 0,
    ...over,
  }
}
