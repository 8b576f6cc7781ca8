// Per-run metrics history (issue #15): the metrics of every forward, forward_backward and optim_step a
// training run ran, the newest `limit` points kept, so that a console can draw loss curves while the run
// trains and after a restart. Points live beside the run record in chunks of CHUNK points, so a new
// point rewrites one small document, not the whole history. Writes trail the futures they describe and
// are coalesced per run (one put in flight at a time): training never waits on its metrics.

import type { Logger } from 'pino'
import { keys } from '../domain/keys.js'
import type { Store } from '../persistence.js'

export type MetricsKind = 'forward' | 'forward_backward' | 'optim_step'

export type MetricPoint = {
  /** Position in the run's history since the run was created (0, 1, 2 …); never reused. */
  n: number
  kind: MetricsKind
  /**
   * Optimizer steps the adapter had taken: before the pass for forward / forward_backward (the loss
   * of the model after `step` updates), after the update for optim_step (its `step:max`).
   */
  step: number
  seq_id: number
  /** Unix milliseconds when the operation finished. */
  at: number
  metrics: Record<string, number>
}

/** Points per stored document. The configured limit is at least this, so only whole chunks age out. */
export const METRICS_CHUNK = 100

const chunkOf = (n: number) => Math.floor(n / METRICS_CHUNK)

type StoredChunk = { points: MetricPoint[] }

export interface RunMetricsOptions {
  store: Store
  /** Points kept per run (server.run_metrics_history). */
  limit: number
  log: Logger
}

/** Opens the histories of the runs this process serves, and reads those of runs served elsewhere. */
export class RunMetrics {
  constructor(private readonly opts: RunMetricsOptions) {}

  get limit(): number {
    return this.opts.limit
  }

  /** The history of a run this process starts serving: empty for a new run, else what the store holds. */
  async open(runId: string, fresh: boolean): Promise<RunHistory> {
    return new RunHistory(runId, fresh ? [] : await this.stored(runId), this.opts)
  }

  /** The newest `limit` stored points of a run, oldest first. */
  async stored(runId: string): Promise<MetricPoint[]> {
    const chunks = await this.opts.store.scan<StoredChunk>(keys.runMetrics(runId))
    return chunks.flatMap((c) => c.doc.value.points).slice(-this.opts.limit)
  }
}

/** One run's history, recorded by the process serving the run. */
export class RunHistory {
  private kept: MetricPoint[]
  private next: number
  /** The oldest chunk that may still be in the store. */
  private oldestStored: number
  private readonly dirty = new Set<number>()
  private writing: Promise<void> | null = null

  constructor(
    private readonly runId: string,
    stored: MetricPoint[],
    private readonly opts: RunMetricsOptions,
  ) {
    this.kept = stored
    this.next = (stored.at(-1)?.n ?? -1) + 1
    this.oldestStored = chunkOf(stored[0]?.n ?? 0)
  }

  record(point: Omit<MetricPoint, 'n' | 'at'>): void {
    const n = this.next++
    this.kept.push({ ...point, n, at: Date.now() })
    if (this.kept.length > this.opts.limit) this.kept = this.kept.slice(-this.opts.limit)
    this.dirty.add(chunkOf(n))
    this.schedule()
  }

  /** The kept points, oldest first. */
  get points(): readonly MetricPoint[] {
    return this.kept
  }

  /** Resolves once every recorded point is in the store. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing
  }

  private schedule(): void {
    if (this.writing) return
    this.writing = this.write().finally(() => {
      this.writing = null
      // A point recorded after the last round checked for work, before this callback ran.
      if (this.dirty.size > 0) this.schedule()
    })
  }

  /** Writes dirty chunks until none is left; points recorded meanwhile join the next round. */
  private async write(): Promise<void> {
    const { store, log } = this.opts
    while (this.dirty.size > 0) {
      const chunks = [...this.dirty]
      this.dirty.clear()
      try {
        const oldestKept = chunkOf(this.kept[0]?.n ?? 0)
        for (const c of chunks) {
          // A chunk that aged out while it waited is deleted below instead.
          if (c < oldestKept) continue
          const points = this.kept.filter((p) => chunkOf(p.n) === c)
          await store.put(keys.runMetric(this.runId, c), { points })
        }
        for (; this.oldestStored < oldestKept; this.oldestStored++) {
          await store.delete(keys.runMetric(this.runId, this.oldestStored))
        }
      } catch (err) {
        // Metrics are informational: the run goes on; the next point writes its chunk again.
        log.warn({ run: this.runId, err }, 'could not store training metrics')
      }
    }
  }
}
