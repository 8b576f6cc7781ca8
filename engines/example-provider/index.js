// tuft-engine-bigram: an example third-party engine provider for TuFT (engines/README.md walks through
// it). A bigram language model over the vocabulary of the model directory it is given, with real LoRA
// adapters: it trains (cross_entropy, importance_sampling) and samples, and hands trained adapters to
// its sampler as PEFT files. Everything it declares below, the conformance suite checks.

import { Type } from '@sinclair/typebox'
import { loadBase } from './bigram.js'
import { LOSSES } from './checks.js'
import { BigramSampling } from './sampling.js'
import { BigramTraining } from './training.js'

const Options = Type.Object(
  {
    seed: Type.Integer({ default: 0, description: 'seed of the frozen base table' }),
    max_context: Type.Integer({ minimum: 16, default: 1024, description: 'tokens per sequence' }),
  },
  { additionalProperties: false },
)

/** @type {import('tuft/engine').EngineProvider<typeof Options>} */
const provider = {
  name: 'tuft-engine-bigram',
  capabilities: {
    snapshots: 'peft-files',
    sampleFromTrainingSnapshot: false,
    losses: LOSSES,
    maxLoraRank: 64,
    architectures: [],
  },
  configSchema: Options,
  async createTraining(options, ctx) {
    return new BigramTraining(loadBase(ctx.modelPath, options.seed), ctx, options.max_context)
  },
  async createSampling(options, ctx) {
    return new BigramSampling(loadBase(ctx.modelPath, options.seed), ctx, options.max_context)
  },
}

export default provider
