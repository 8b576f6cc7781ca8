// TrainingEngine on the native engine: adapters, fused multi-adapter forward/backward, AdamW steps,
// checkpoints and snapshots for samplers.
import { mkdir } from 'node:fs/promises'
import type {
  AdamParams,
  AdapterId,
  EngineHealth,
  EngineInfo,
  LoraSpec,
  Manifest,
  OptimResult,
  TrainItem,
  TrainItemResult,
  TrainingEngine,
} from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import type { NativeTrainItem } from './binding.js'
import { toNativeItem } from './native-item.js'
import { call, manifestOf, type SharedEngine } from './shared.js'

/** Consecutive groups of at most maxTokens tokens (an item larger than the budget goes alone). */
export function chunkByTokens<T extends { tokens: Int32Array }>(items: T[], maxTokens: number): T[][] {
  const chunks: T[][] = []
  let current: T[] = []
  let tokens = 0
  for (const item of items) {
    if (current.length > 0 && tokens + item.tokens.length > maxTokens) {
      chunks.push(current)
      current = []
      tokens = 0
    }
    current.push(item)
    tokens += item.tokens.length
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

export class NativeTrainingEngine implements TrainingEngine {
  readonly info: EngineInfo
  private closed = false

  constructor(private readonly shared: SharedEngine) {
    this.info = shared.info
  }

  private get native() {
    if (this.closed) throw tuftError('TUFT_UNAVAILABLE', 'the training engine was closed')
    return this.shared.native
  }

  async createAdapter(id: AdapterId, lora: LoraSpec): Promise<void> {
    await call(() => this.native.createAdapter(id, lora))
  }

  async dropAdapter(id: AdapterId): Promise<void> {
    await call(() => this.native.dropAdapter(id))
  }

  async forwardBackward(items: TrainItem[]): Promise<TrainItemResult[]> {
    if (items.length === 0) return []
    const native: NativeTrainItem[] = items.map(toNativeItem)
    // Losses are sums and gradients accumulate, so splitting the batch changes memory, not results.
    const results: TrainItemResult[] = []
    for (const chunk of chunkByTokens(native, this.shared.maxBatchTokens)) {
      results.push(...(await call(() => this.native.forwardBackward(chunk))))
    }
    return results
  }

  async optimStep(id: AdapterId, adam: AdamParams): Promise<OptimResult> {
    return await call(() => this.native.optimStep(id, adam))
  }

  async saveState(id: AdapterId, dir: string, opts: { optimizer: boolean }): Promise<Manifest> {
    await mkdir(dir, { recursive: true })
    await call(() => this.native.saveAdapter(id, dir, opts.optimizer))
    return await manifestOf(dir)
  }

  async loadState(id: AdapterId, dir: string, opts: { optimizer: boolean }): Promise<void> {
    await call(() => this.native.loadAdapter(id, dir, opts.optimizer))
  }

  async exportAdapter(id: AdapterId, dir: string): Promise<Manifest> {
    await mkdir(dir, { recursive: true })
    await call(() => this.native.exportPeft(id, dir))
    return await manifestOf(dir)
  }

  async snapshotAdapter(id: AdapterId, snapshotId: AdapterId): Promise<void> {
    await call(() => this.native.snapshotAdapter(id, snapshotId))
  }

  async health(): Promise<EngineHealth> {
    return this.closed ? { ok: false, message: 'closed' } : { ok: true }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.shared.release()
  }
}
