// Per-base-model training scheduler (ARCHITECTURE §3.4): collects ready forward / forward_backward work
// from every tenant and hands the engine one fused call at a time, shared between users by weighted
// fair queueing over tokens (deficit round-robin). No call holds more than server.max_batch_tokens: a
// larger request is executed datum by datum in slices that interleave with other users' work (a single
// datum over the budget runs alone). If a fused call fails, its slices are retried one by one so that
// only the culprit's future fails.

import type { RequestTrace, TrainItem, TrainItemResult, TrainingEngine } from '../engine.js'
import type { EventBus } from '../events.js'

/** A user's share of engine time relative to the others' (default 1: equal shares). */
export type UserWeight = (userId: string) => number

export interface SchedulerOptions {
  modelName: string
  engine: () => Pick<TrainingEngine, 'forwardBackward'>
  /** Token budget of one engine call (one datum larger than this still runs, alone). */
  maxBatchTokens: number
  userWeight?: UserWeight
  events?: EventBus
}

interface Work {
  userId: string
  items: TrainItem[]
  trace: RequestTrace
  ran: { fused: boolean } | undefined
  /** The first item not yet handed to the engine. */
  next: number
  results: TrainItemResult[]
  /** Some slice shared its call with other works, or the work ran in several calls. */
  fused: boolean
  calls: number
  failed: boolean
  resolve: (results: TrainItemResult[]) => void
  reject: (err: unknown) => void
}

/** Items [from, to) of one work, in one engine call. */
interface Slice {
  work: Work
  from: number
  to: number
}

const itemTokens = (item: TrainItem) => Math.max(1, item.tokens.length)

export class TrainingScheduler {
  private readonly queues = new Map<string, Work[]>()
  private readonly deficit = new Map<string, number>()
  /** Users in round-robin order; the head is served first in the next cycle. */
  private order: string[] = []
  private running = false
  private depth = 0

  constructor(private readonly opts: SchedulerOptions) {}

  /**
   * Queues one request's items (all of one adapter); resolves with their results in order once every
   * slice ran. Losses are sums and gradients accumulate across engine calls until optim_step, so slicing
   * moves at most the last bits (fp summation order). `ran.fused` tells whether the items shared an
   * engine call with other requests' items or ran in several calls: a replay alone could then differ in
   * those bits, so durable state replays only passes where it is false.
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
      queue.push({
        userId,
        items,
        trace,
        ran,
        next: 0,
        results: [],
        fused: false,
        calls: 0,
        failed: false,
        resolve,
        reject,
      })
      this.setDepth(this.depth + 1)
      this.pump()
    })
  }

  /** Requests with items not yet handed to the engine. */
  queuedWorks(): number {
    return this.depth
  }

  private pump(): void {
    if (this.running || this.depth === 0) return
    this.running = true
    this.execute(this.nextBatch()).finally(() => {
      this.running = false
      // One turn of the event loop first: a user whose work just finished submits its next engine call
      // (the optim_step the SDK pipelined) before the next slice, instead of waiting behind it.
      setImmediate(() => this.pump())
    })
  }

  private weight(userId: string): number {
    const w = this.opts.userWeight?.(userId) ?? 1
    return Number.isFinite(w) && w > 0 ? w : 1
  }

  /**
   * Deficit round-robin: each pass gives every waiting user a quantum of tokens in proportion to their
   * weight, spent on the datums at the head of their queue (a user's requests stay in order).
   */
  private nextBatch(): Slice[] {
    const budget = this.opts.maxBatchTokens
    const batch: Slice[] = []
    let tokens = 0
    const users = this.order.filter((u) => (this.queues.get(u)?.length ?? 0) > 0)
    const totalWeight = users.reduce((sum, u) => sum + this.weight(u), 0)
    while (batch.length === 0 && users.length > 0) {
      for (const user of users) {
        const queue = this.queues.get(user)!
        if (queue.length === 0) continue
        const quantum = Math.max(1, Math.floor((budget * this.weight(user)) / totalWeight))
        let credit = Math.min(budget, (this.deficit.get(user) ?? 0) + quantum)
        while (queue.length > 0) {
          const head = queue[0]!
          const n = itemTokens(head.items[head.next]!)
          const alone = batch.length === 0 && n > budget
          if (!alone && (n > credit || tokens + n > budget)) break
          this.take(batch, head)
          credit = alone ? 0 : credit - n
          tokens = alone ? budget : tokens + n
          if (head.next === head.items.length) {
            queue.shift()
            this.setDepth(this.depth - 1)
          }
          if (alone) break
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

  /** Adds the work's next item to the batch, extending its slice there. */
  private take(batch: Slice[], work: Work): void {
    const last = batch.at(-1)
    if (last?.work === work) last.to++
    else batch.push({ work, from: work.next, to: work.next + 1 })
    work.next++
  }

  private async execute(batch: Slice[]): Promise<void> {
    if (batch.length === 0) return
    const engine = this.opts.engine()
    const call = (slices: Slice[]) =>
      engine.forwardBackward(
        slices.flatMap((s) => s.work.items.slice(s.from, s.to)),
        { requests: slices.map((s) => s.work.trace) },
      )
    try {
      const results = await call(batch)
      const expected = batch.reduce((n, s) => n + s.to - s.from, 0)
      if (results.length !== expected) {
        throw new Error(`engine returned ${results.length} results for a call of ${expected} items`)
      }
      let at = 0
      for (const slice of batch) {
        this.record(slice, results.slice(at, at + slice.to - slice.from), batch.length > 1)
        at += slice.to - slice.from
      }
    } catch (err) {
      if (batch.length === 1) {
        this.fail(batch[0]!.work, err)
        return
      }
      // Isolate the culprit: the same slices, one engine call each.
      for (const slice of batch) {
        try {
          this.record(slice, await call([slice]), true)
        } catch (single) {
          this.fail(slice.work, single)
        }
      }
    }
  }

  private record(slice: Slice, results: TrainItemResult[], shared: boolean): void {
    const { work } = slice
    if (work.failed) return
    work.results.push(...results)
    work.calls++
    work.fused ||= shared || work.calls > 1
    if (work.results.length < work.items.length) return
    if (work.ran) work.ran.fused = work.fused
    work.resolve(work.results)
  }

  /**
   * Fails the whole request; its datums not yet run are dropped. Gradients of slices that already ran
   * stay accumulated, as they do when an engine fails midway through its own chunks of one call.
   */
  private fail(work: Work, err: unknown): void {
    if (work.failed) return
    work.failed = true
    const queue = this.queues.get(work.userId)
    const at = queue?.indexOf(work) ?? -1
    if (at >= 0) {
      queue!.splice(at, 1)
      this.setDepth(this.depth - 1)
    }
    work.reject(err)
  }

  private setDepth(depth: number): void {
    this.depth = depth
    this.opts.events?.emit('queue.depth', { modelName: this.opts.modelName, kind: 'training', depth })
  }
}
