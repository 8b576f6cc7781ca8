// Base models served by this process: for each configured model, its engines (loaded in the
// background so boot stays bounded), its training scheduler and the facts get_info reports.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { estimateTrainingMemory, type ModelShape, shapeFromHfConfig } from '../domain/memory.js'
import type {
  EngineContext,
  EngineHealth,
  EngineInfo,
  EngineProvider,
  LoraSpec,
  LossFn,
  MemoryEstimate,
  SamplingEngine,
  TrainingEngine,
} from '../engine.js'
import { tuftError } from '../errors.js'
import type { EventBus } from '../events.js'
import { type EngineRegistry, providerOptions } from '../registry.js'
import { TrainingScheduler, type UserWeight } from './scheduler.js'

export type ModelState = 'loading' | 'ready' | 'failed'

/** Resident sampler adapters per model when max_loras is not configured. */
export const DEFAULT_MAX_LORAS = 32

/** An engine provider named in config, with its (not yet checked) options. */
export interface EngineChoice {
  provider: string
  options: Record<string, unknown>
}

/**
 * What a host needs to know of a configured base model. Declared here so that core depends on no
 * config loader; config/schema.ts's ModelSpec satisfies it (a type test there keeps it so).
 */
export interface ModelSpec {
  model_name: string
  model_path: string
  max_model_len?: number | undefined
  capabilities: readonly ('training' | 'sampling')[]
  max_lora_rank: number
  lora_alpha_ratio?: number | undefined
  /** Bound on resident sampler adapters. */
  max_loras?: number | undefined
  tokenizer_id?: string | undefined
  training: EngineChoice
  sampling: EngineChoice
}

export interface ModelHostOptions {
  config: ModelSpec
  registry: EngineRegistry
  /** Where relative provider module specifiers are resolved from (the config file's directory). */
  configDir: string
  log: Logger
  events: EventBus
  maxBatchTokens: number
  /** Each user's share of training engine time (default: equal). */
  userWeight?: UserWeight
  /** Wraps every engine once (telemetry); identity when absent. */
  wrapTraining?: (engine: TrainingEngine, modelName: string) => TrainingEngine
  wrapSampling?: (engine: SamplingEngine, modelName: string) => SamplingEngine
  /** Produces the model directory before loading (the embedded model is generated on first start). */
  prepare?: () => Promise<string>
}

/** Resolves a provider and checks its options against the provider's own schema. */
async function choose(
  registry: EngineRegistry,
  configDir: string,
  name: string,
  options: Record<string, unknown>,
  what: string,
): Promise<{ provider: EngineProvider; options: unknown }> {
  const provider = await registry.resolve(name, configDir)
  return { provider, options: providerOptions(provider, options, what) }
}

/** A model's loading state and what each of its engines says of itself. */
export interface ModelHealth {
  state: ModelState
  training?: EngineHealth
  sampling?: EngineHealth
}

/** A health() that has not answered by then counts as unhealthy (a readiness probe must not hang). */
const HEALTH_TIMEOUT_MS = 2000

async function healthOf(engine: TrainingEngine | SamplingEngine): Promise<EngineHealth> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<EngineHealth>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, message: 'health() did not answer in time' }),
      HEALTH_TIMEOUT_MS,
    )
  })
  try {
    return await Promise.race([
      engine.health().catch((err: unknown) => ({ ok: false, message: (err as Error).message })),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The engine context with max_lora_rank capped to what the provider declares it accepts. */
function capped(ctx: EngineContext, provider: EngineProvider): EngineContext {
  return { ...ctx, maxLoraRank: Math.min(ctx.maxLoraRank, provider.capabilities.maxLoraRank) }
}

export class ModelHost {
  readonly name: string
  readonly config: ModelSpec
  state: ModelState = 'loading'
  private trainingEngine: TrainingEngine | null = null
  private samplingEngine: SamplingEngine | null = null
  private trainingProvider: EngineProvider | null = null
  private samplingProvider: EngineProvider | null = null
  private loading: Promise<void> | null = null
  private dir: string | null = null
  private shape: Promise<ModelShape | null> | null = null
  readonly scheduler: TrainingScheduler

  constructor(private readonly opts: ModelHostOptions) {
    this.config = opts.config
    this.name = opts.config.model_name
    this.scheduler = new TrainingScheduler({
      modelName: this.name,
      engine: () => this.training(),
      maxBatchTokens: opts.maxBatchTokens,
      events: opts.events,
      ...(opts.userWeight ? { userWeight: opts.userWeight } : {}),
    })
  }

  get tokenizerId(): string {
    return this.config.tokenizer_id ?? this.name
  }

  get maxLoraRank(): number {
    return Math.min(
      this.config.max_lora_rank,
      this.trainingProvider?.capabilities.maxLoraRank ?? Number.POSITIVE_INFINITY,
      this.trainingEngine?.info.maxLoraRank ?? Number.POSITIVE_INFINITY,
    )
  }

  /** The losses the training engine declares (none before it is loaded). */
  losses(): readonly LossFn[] {
    return this.trainingProvider?.capabilities.losses ?? []
  }

  /** Sampler adapters the sampling engine keeps resident (least recently used beyond it are unloaded). */
  get maxLoras(): number {
    return this.config.max_loras ?? DEFAULT_MAX_LORAS
  }

  /** The model directory the engines loaded (tokenizer and config files); requires loading to have begun. */
  modelDir(): string {
    if (this.dir === null) throw tuftError('TUFT_UNAVAILABLE', `Model '${this.name}' is still loading`)
    return this.dir
  }

  /** PEFT lora_alpha for a rank (official default 32 unless lora_alpha_ratio is configured). */
  loraAlpha(rank: number): number {
    return this.config.lora_alpha_ratio === undefined ? 32 : this.config.lora_alpha_ratio * rank
  }

  supports(capability: 'training' | 'sampling'): boolean {
    return this.config.capabilities.includes(capability)
  }

  /** Starts loading the engines (once); resolves when ready, rejects when loading failed. */
  load(): Promise<void> {
    this.loading ??= this.doLoad()
    return this.loading
  }

  async whenReady(): Promise<void> {
    try {
      await this.load()
    } catch (err) {
      throw tuftError('TUFT_UNAVAILABLE', `Model '${this.name}' failed to load: ${(err as Error).message}`)
    }
  }

  training(): TrainingEngine {
    if (!this.trainingEngine)
      throw tuftError('TUFT_UNAVAILABLE', `Model '${this.name}' is not ready for training`)
    return this.trainingEngine
  }

  sampling(): SamplingEngine {
    if (!this.samplingEngine)
      throw tuftError('TUFT_UNAVAILABLE', `Model '${this.name}' is not ready for sampling`)
    return this.samplingEngine
  }

  /** Facts about the loaded model (vocabulary, context); requires readiness. */
  info(): EngineInfo {
    const info = this.trainingEngine?.info ?? this.samplingEngine?.info
    if (!info) throw tuftError('TUFT_UNAVAILABLE', `Model '${this.name}' is still loading`)
    return info
  }

  /**
   * What training an adapter of `lora` will hold in memory here: the engine's own estimate, else one from
   * the model's config.json shapes (read once), else null (a model without them is not bounded).
   */
  async trainingMemory(lora: LoraSpec): Promise<MemoryEstimate | null> {
    const engine = this.training()
    if (engine.estimateMemory) return engine.estimateMemory(lora)
    this.shape ??= readFile(join(this.modelDir(), 'config.json'), 'utf8').then(
      (text) => shapeFromHfConfig(JSON.parse(text)),
      () => null,
    )
    const shape = await this.shape.catch(() => null)
    return shape && estimateTrainingMemory(shape, lora, this.opts.maxBatchTokens)
  }

  /** The context limit: configured max_model_len, capped by the engine's own limit once known. */
  maxContext(): number {
    const engine = this.trainingEngine?.info.maxContext ?? this.samplingEngine?.info.maxContext
    const configured = this.config.max_model_len
    if (engine === undefined) return configured ?? 0
    return configured === undefined ? engine : Math.min(configured, engine)
  }

  /**
   * True when the sampling engine serves the training engine's in-memory snapshots: one provider object
   * declaring shared-memory snapshots it samples from. Otherwise snapshots travel as PEFT files.
   */
  samplesTrainingSnapshots(): boolean {
    const provider = this.trainingProvider
    return (
      provider !== null &&
      provider === this.samplingProvider &&
      provider.capabilities.snapshots === 'shared-memory' &&
      provider.capabilities.sampleFromTrainingSnapshot
    )
  }

  /** The loading state and, once loaded, each engine's own health. */
  async health(): Promise<ModelHealth> {
    const [training, sampling] = await Promise.all(
      [this.trainingEngine, this.samplingEngine].map((e) => (e === null ? undefined : healthOf(e))),
    )
    return {
      state: this.state,
      ...(training === undefined ? {} : { training }),
      ...(sampling === undefined ? {} : { sampling }),
    }
  }

  async close(): Promise<void> {
    await this.loading?.catch(() => {})
    const engines = [this.trainingEngine, this.samplingEngine]
    this.trainingEngine = null
    this.samplingEngine = null
    for (const engine of new Set(engines)) await engine?.close()
  }

  private async doLoad(): Promise<void> {
    const { config, registry, configDir, log } = this.opts
    const started = Date.now()
    try {
      const modelPath = this.opts.prepare ? await this.opts.prepare() : config.model_path
      this.dir = modelPath
      const ctx: EngineContext = {
        modelName: config.model_name,
        modelPath,
        maxModelLen: config.max_model_len ?? 0,
        maxLoraRank: config.max_lora_rank,
        maxLoras: this.maxLoras,
        maxBatchTokens: this.opts.maxBatchTokens,
        log: log.child({ model: config.model_name }),
      }
      log.info({ model: this.name, path: modelPath }, 'loading model')
      if (this.supports('training')) {
        const { training } = config
        const { provider, options } = await choose(
          registry,
          configDir,
          training.provider,
          training.options,
          `Model '${this.name}' training`,
        )
        if (!provider.createTraining) throw tuftError('TUFT_CONFIG', `Engine '${provider.name}' cannot train`)
        const engine = await provider.createTraining(options, capped(ctx, provider))
        if (provider.capabilities.snapshots === 'shared-memory' && !engine.snapshotAdapter) {
          await engine.close()
          throw tuftError(
            'TUFT_CONFIG',
            `Engine '${provider.name}' declares shared-memory snapshots but has no snapshotAdapter`,
          )
        }
        this.trainingProvider = provider
        this.trainingEngine = this.opts.wrapTraining?.(engine, this.name) ?? engine
      }
      if (this.supports('sampling')) {
        const { sampling } = config
        const { provider, options } = await choose(
          registry,
          configDir,
          sampling.provider,
          sampling.options,
          `Model '${this.name}' sampling`,
        )
        if (!provider.createSampling)
          throw tuftError('TUFT_CONFIG', `Engine '${provider.name}' cannot sample`)
        const engine = await provider.createSampling(options, capped(ctx, provider))
        this.samplingProvider = provider
        this.samplingEngine = this.opts.wrapSampling?.(engine, this.name) ?? engine
      }
      this.state = 'ready'
      log.info({ model: this.name, ms: Date.now() - started, device: this.info().device }, 'model ready')
    } catch (err) {
      this.state = 'failed'
      log.error({ model: this.name, err }, 'model failed to load')
      throw err
    }
  }
}

export class ModelHosts {
  private readonly hosts = new Map<string, ModelHost>()

  constructor(hosts: ModelHost[]) {
    for (const h of hosts) {
      if (this.hosts.has(h.name)) throw tuftError('TUFT_CONFIG', `Model '${h.name}' is configured twice`)
      this.hosts.set(h.name, h)
    }
  }

  list(): ModelHost[] {
    return [...this.hosts.values()]
  }

  /** The host serving base_model, or a 400 naming the supported models. */
  get(name: string): ModelHost {
    const host = this.hosts.get(name)
    if (!host) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `Unknown base model '${name}'. Supported: ${[...this.hosts.keys()].join(', ')}`,
      )
    }
    return host
  }

  /** Starts every model loading; resolves when all are ready, rejects on the first failure. */
  loadAll(): Promise<void> {
    return Promise.all(this.list().map((h) => h.load())).then(() => undefined)
  }

  async close(): Promise<void> {
    for (const h of this.list()) await h.close()
  }
}
