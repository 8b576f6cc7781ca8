// Per-base-model training scheduler (ARCHITECTURE §3.4): collects ready forward / forward_backward work
// from every tenant and hands the engine one fused call at a time, fair between users (deficit
// round-robin by tokens) within a token budget. If a fused call fails, its works are retried one by one
// so that only the culprit's future fails.

import type { RequestTrace, TrainItem, TrainItemResult, TrainingEngine } from '../engine.js'
import type { EventBus } from '../events.js'

export interface SchedulerOptions {
  modelName: string
  engine: () => Pick<TrainingEngine, 'forwardBackward'>
  /** Token budget of one fused engine call (one oversized work still runs, alone). */
  maxBatchTokens: number
  events?: EventBus
}

interface Work {
  userId: string
  items: TrainItem[]
  tokens: number
  trace: RequestTrace
  ran: { fused: boolean } | undefined
  resolve: (results: TrainItemResult[]) => void
  reject: (err: unknown) => void
}

function workTokens(items: readonly TrainItem[]): number {
  let n = 0
  for (const item of items) n += item.tokens.length
  return Math.max(1, n)
}

export class TrainingScheduler {
  private readonly queues = new Map<string, Work[]>()
  private readonly deficit = new Map<string, number>()
  /** Users in round-robin order; the head is served first in the next cycle. */
  private order: string[] = []
  private running = false
  private depth = 0

  constructor(private readonly opts: SchedulerOptions) {}

  /**
   * Queues one request's items (all of one adapter); resolves with their results in order. `ran.fused`
   * tells whether they shared the engine call with other requests' items (which can move the last bits
   * of their gradients: durable state replays only passes that ran alone).
   */
  submit(
    userId: string,
    items: TrainItem[],
    trace: RequestTrace,
    ran?: { fused: boolean },
  ): Promise<TrainItemResult[]> {
    if (items.length === 0) return Promise.resolve([])
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(userId)
      if (!queue) {
        queue = []
        this.queues.set(userId, queue)
        this.order.push(userId)
      }
      queue.push({ userId, items, tokens: workTokens(items), trace, ran, resolve, reject })
      this.setDepth(this.depth + 1)
      this.pump()
    })
  }

  queuedWorks(): number {
    return this.depth
  }

  private pump(): void {
    if (this.running || this.depth === 0) return
    this.running = true
    const batch = this.nextBatch()
    this.setDepth(this.depth - batch.length)
    this.execute(batch).finally(() => {
      this.running = false
      this.pump()
    })
  }

  /** Deficit round-robin: each pass gives every waiting user a quantum of tokens to spend. */
  nextBatch(): Work[] {
    const budget = this.opts.maxBatchTokens
    const batch: Work[] = []
    let tokens = 0
    const users = this.order.filter((u) => (this.queues.get(u)?.length ?? 0) > 0)
    const quantum = Math.max(1, Math.floor(budget / Math.max(1, users.length)))
    while (batch.length === 0 && users.length > 0) {
      for (const user of users) {
        const queue = this.queues.get(user)!
        if (queue.length === 0) continue
        let credit = Math.min(budget, (this.deficit.get(user) ?? 0) + quantum)
        while (queue.length > 0) {
          const head = queue[0]!
          if (batch.length === 0 && head.tokens > budget) {
            batch.push(queue.shift()!)
            credit = 0
            tokens = budget
            break
          }
          if (head.tokens > credit || tokens + head.tokens > budget) break
          batch.push(queue.shift()!)
          credit -= head.tokens
          tokens += head.tokens
        }
        this.deficit.set(user, queue.length === 0 ? 0 : credit)
        if (tokens >= budget) break
      }
    }
    // Rotate so the next cycle starts with the user after this cycle's first; drop idle users.
    const first = this.order.shift()
    if (first !== undefined) this.order.push(first)
    this.order = this.order.filter((u) => {
      const idle = (this.queues.get(u)?.length ?? 0) === 0
      if (idle) {
        this.queues.delete(u)
        this.deficit.delete(u)
      }
      return !idle
    })
    return batch
  }

  private async execute(batch: Work[]): Promise<void> {
    if (batch.length === 0) return
    const engine = this.opts.engine()
    try {
      const results = await engine.forwardBackward(
        batch.flatMap((w) => w.items),
        { requests: batch.map((w) => w.trace) },
      )
      if (results.length !== batch.reduce((n, w) => n + w.items.length, 0)) {
        throw new Error(`engine returned ${results.length} results for a fused call`)
      }
      let at = 0
      for (const work of batch) {
        if (work.ran) work.ran.fused = batch.length > 1
        work.resolve(results.slice(at, at + work.items.length))
        at += work.items.length
      }
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err)
        return
      }
      // Isolate the culprit: the same works, one engine call each.
      for (const work of batch) {
        try {
          work.resolve(await engine.forwardBackward(work.items, { requests: [work.trace] }))
        } catch (single) {
          work.reject(single)
        }
      }
    }
  }

  private setDepth(depth: number): void {
    this.depth = depth
    this.opts.events?.emit('queue.depth', { modelName: this.opts.modelName, kind: 'training', depth })
  }
}
