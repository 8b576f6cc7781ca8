// The built-in `native` engine provider: LoRA training and sampling on the C++ engine. Training and
// sampling engines of one model share one native engine (one copy of the base weights).
import { resolve } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import { type EngineContext, type EngineProvider, LOSS_FNS } from '../../core/engine.js'
import { loadBinding } from './binding.js'
import { NativeSamplingEngine } from './sampling.js'
import { call, SharedEngine } from './shared.js'
import { NativeTrainingEngine } from './training.js'

export const NativeConfigSchema = Type.Object(
  {
    threads: Type.Optional(
      Type.Integer({ minimum: 0, description: 'engine worker threads; 0 = one per core' }),
    ),
    kv_cache_mb: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          'sampler KV cache in MiB, allocated at the first sample (default 2048, less for small models)',
      }),
    ),
    max_batch_tokens: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'tokens per fused forward/backward pass; larger batches are split',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NativeConfig = Static<typeof NativeConfigSchema>

const DEFAULT_MAX_BATCH_TOKENS = 16384

/** A provider with its own table of open engines (one per model directory). */
export function createNativeProvider(): EngineProvider<typeof NativeConfigSchema> {
  const open = new Map<string, Promise<SharedEngine>>()

  const acquire = async (cfg: NativeConfig, ctx: EngineContext): Promise<SharedEngine> => {
    const key = resolve(ctx.modelPath)
    let pending = open.get(key)
    if (pending === undefined) {
      pending = (async () => {
        const { Engine } = loadBinding()
        const native = new Engine()
        const model = await call(() =>
          native.open(key, {
            threads: cfg.threads ?? 0,
            maxLoraRank: ctx.maxLoraRank,
            maxSeqLen: ctx.maxModelLen,
            kvCacheMb: cfg.kv_cache_mb ?? 0,
          }),
        ).catch(async (err) => {
          await native.close().catch(() => undefined)
          throw err
        })
        const maxContext =
          ctx.maxModelLen > 0 ? Math.min(ctx.maxModelLen, model.maxPosition) : model.maxPosition
        ctx.log.info({ model: ctx.modelName, backend: model.backend, arch: model.arch }, 'native engine open')
        const maxBatch = cfg.max_batch_tokens ?? DEFAULT_MAX_BATCH_TOKENS
        return new SharedEngine(native, model, key, maxContext, ctx.maxLoraRank, maxBatch, () =>
          open.delete(key),
        )
      })()
      open.set(key, pending)
      pending.catch(() => open.delete(key))
    }
    const shared = await pending
    shared.acquire()
    return shared
  }

  return {
    name: 'native',
    capabilities: {
      // Training and sampling of one model share one native engine (see acquire).
      snapshots: 'shared-memory',
      sampleFromTrainingSnapshot: true,
      losses: LOSS_FNS,
      // The config schema's bound on max_lora_rank: the engine allocates for whatever is configured.
      maxLoraRank: 1024,
      architectures: ['Qwen3ForCausalLM', 'Qwen2ForCausalLM', 'LlamaForCausalLM'],
    },
    configSchema: NativeConfigSchema,
    async createTraining(cfg, ctx) {
      return new NativeTrainingEngine(await acquire(cfg, ctx))
    },
    async createSampling(cfg, ctx) {
      return new NativeSamplingEngine(await acquire(cfg, ctx))
    },
  }
}

export default createNativeProvider()
