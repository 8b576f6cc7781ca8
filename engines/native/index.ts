// The built-in `native` engine provider: LoRA training and sampling on the C++ engine. Training and
// sampling engines of one model share one native engine (one copy of the base weights).
import { resolve } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import { type EngineContext, type EngineProvider, LOSS_FNS } from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import { loadBinding, type NativeBackend } from './binding.js'
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
          'sampler KV cache in MiB, reserved at the first sample and filled as sequences grow (default 2048, ' +
          'less for small models); a request needing more positions than it holds is refused',
      }),
    ),
    backend: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "compute backend: 'auto' (default: the best available), 'cpu' (OpenBLAS when the build found it, " +
          "else the built-in GEMM) or 'cpu-builtin'; training and sampling of one model share one engine, " +
          'so they must agree',
      }),
    ),
  },
  { additionalProperties: false },
)
export type NativeConfig = Static<typeof NativeConfigSchema>

/** The backend option against what this build registers (the engine checks it again). */
export function checkBackend(requested: string, backends: NativeBackend[]): void {
  if (requested === 'auto') return
  const known = ['auto', ...backends.map((b) => b.name)].join(', ')
  const found = backends.find((b) => b.name === requested)
  if (found === undefined) {
    throw tuftError('TUFT_CONFIG', `native engine: unknown backend '${requested}' (this build has ${known})`)
  }
  if (!found.available) {
    throw tuftError(
      'TUFT_CONFIG',
      `native engine: backend '${requested}' is not available on this machine (this build has ${known})`,
    )
  }
}

/** A provider with its own table of open engines (one per model directory). */
export function createNativeProvider(): EngineProvider<typeof NativeConfigSchema> {
  const open = new Map<string, Promise<SharedEngine>>()

  const acquire = async (cfg: NativeConfig, ctx: EngineContext): Promise<SharedEngine> => {
    const key = resolve(ctx.modelPath)
    const backend = cfg.backend ?? 'auto'
    const binding = loadBinding()
    checkBackend(backend, binding.backends())
    let pending = open.get(key)
    if (pending === undefined) {
      pending = (async () => {
        const native = new binding.Engine()
        const model = await call(() =>
          native.open(key, {
            threads: cfg.threads ?? 0,
            maxLoraRank: ctx.maxLoraRank,
            maxSeqLen: ctx.maxModelLen,
            kvCacheMb: cfg.kv_cache_mb ?? 0,
            backend,
          }),
        ).catch(async (err) => {
          await native.close().catch(() => undefined)
          throw err
        })
        const maxContext =
          ctx.maxModelLen > 0 ? Math.min(ctx.maxModelLen, model.maxPosition) : model.maxPosition
        ctx.log.info(
          {
            model: ctx.modelName,
            backend: model.backend,
            device: model.device,
            threads: model.threads,
            arch: model.arch,
          },
          'native engine open',
        )
        return new SharedEngine(native, model, key, maxContext, ctx.maxLoraRank, ctx.maxBatchTokens, () =>
          open.delete(key),
        )
      })()
      open.set(key, pending)
      pending.catch(() => open.delete(key))
    }
    const shared = await pending
    if (backend !== 'auto' && backend !== shared.model.backend) {
      throw tuftError(
        'TUFT_CONFIG',
        `native engine: model '${ctx.modelName}' is already open on backend '${shared.model.backend}'; ` +
          `its training and sampling share one engine and cannot also use '${backend}'`,
      )
    }
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
