// Fair sharing of one model's sampling between users (on every engine): each user holds at most a share
// of the model's request bound (server.sample_queue_limit), so one user's backlog never turns another
// user's request into a 429; and requests reach the engine's continuous batch from per-user queues,
// round-robin, within a bound on the samples decoding at once (server.max_running_samples).

import { tuftError } from '../errors.js'

export interface SampleAdmissionOptions {
  modelName: string
  /** Queued + running requests on the model, shared between the users that hold some. */
  queueLimit: number
  /** Samples (sequences) handed to the engine at once; the rest wait here. */
  runningLimit: number
  /** Called with the model's queued + running requests after each change. */
  onDepth?: (depth: number) => void
}

/** A request's place: `start` resolves once it may run on the engine; `leave` gives the place back. */
export interface Place {
  start(signal?: AbortSignal): Promise<void>
  leave(): void
}

interface Waiter {
  samples: number
  admit: () => void
}

interface UserState {
  /** Requests queued or running. */
  held: number
  /** Samples running on the engine. */
  running: number
  waiting: Waiter[]
}

export class SampleAdmission {
  private readonly users = new Map<string, UserState>()
  /** Users with waiting requests, in round-robin order. */
  private order: string[] = []
  private depth = 0
  private runningSamples = 0

  constructor(private readonly opts: SampleAdmissionOptions) {}

  /**
   * Takes a place for one request of `samples` sequences; 429 when the user holds their share of the
   * bound already: the bound divided by the users holding requests (this one included), at least 1.
   */
  enter(userId: string, samples: number): Place {
    const user = this.users.get(userId) ?? { held: 0, running: 0, waiting: [] }
    const holders = this.users.size + (this.users.has(userId) ? 0 : 1)
    const share = Math.max(1, Math.floor(this.opts.queueLimit / holders))
    if (user.held >= share) {
      const of = holders > 1 ? `your share (${share}) of ` : ''
      throw tuftError(
        'TUFT_BUSY',
        `Too many sampling requests in flight for '${this.opts.modelName}': ${user.held} of ${of}server.sample_queue_limit ${this.opts.queueLimit}; retry shortly`,
      )
    }
    this.users.set(userId, user)
    user.held++
    this.setDepth(this.depth + 1)
    let state: 'placed' | 'waiting' | 'running' | 'left' = 'placed'
    let waiter: Waiter | null = null
    const run = () => {
      state = 'running'
      user.running += samples
      this.runningSamples += samples
    }
    return {
      start: (signal) => {
        if (state !== 'placed') return Promise.reject(new Error('a place starts once'))
        if (user.waiting.length === 0 && this.mayRun(user, samples)) {
          run()
          return Promise.resolve()
        }
        state = 'waiting'
        return new Promise<void>((resolve, reject) => {
          const onAbort = () => {
            this.unqueue(userId, user, waiter!)
            state = 'placed'
            reject(signal!.reason)
          }
          waiter = {
            samples,
            admit: () => {
              signal?.removeEventListener('abort', onAbort)
              run()
              resolve()
            },
          }
          if (signal?.aborted) return onAbort()
          signal?.addEventListener('abort', onAbort, { once: true })
          user.waiting.push(waiter)
          if (!this.order.includes(userId)) this.order.push(userId)
        })
      },
      leave: () => {
        if (state === 'left') return
        if (state === 'waiting') this.unqueue(userId, user, waiter!)
        if (state === 'running') {
          user.running -= samples
          this.runningSamples -= samples
        }
        state = 'left'
        user.held--
        if (user.held === 0) this.users.delete(userId)
        this.setDepth(this.depth - 1)
        this.dispatch()
      },
    }
  }

  /**
   * Within the bound, or while the user runs less than an equal part of it among the users running or
   * waiting: so a newcomer starts at once beside a flood, and the total stays under twice the bound.
   */
  private mayRun(user: UserState, samples: number): boolean {
    if (this.runningSamples + samples <= this.opts.runningLimit || this.runningSamples === 0) return true
    let contenders = 0
    for (const u of this.users.values()) if (u.running > 0 || u.waiting.length > 0 || u === user) contenders++
    return user.running < this.opts.runningLimit / Math.max(1, contenders)
  }

  /** Starts waiting requests, one per user in turn, while they may run. */
  private dispatch(): void {
    let admitted = true
    while (admitted) {
      admitted = false
      for (const userId of [...this.order]) {
        const user = this.users.get(userId)
        const head = user?.waiting[0]
        if (!user || !head) {
          this.order = this.order.filter((u) => u !== userId)
          continue
        }
        if (!this.mayRun(user, head.samples)) continue
        user.waiting.shift()
        // Served: to the back of the round.
        this.order = this.order.filter((u) => u !== userId)
        if (user.waiting.length > 0) this.order.push(userId)
        head.admit()
        admitted = true
        break
      }
    }
  }

  private unqueue(userId: string, user: UserState, waiter: Waiter): void {
    const at = user.waiting.indexOf(waiter)
    if (at >= 0) user.waiting.splice(at, 1)
    if (user.waiting.length === 0) this.order = this.order.filter((u) => u !== userId)
  }

  private setDepth(depth: number): void {
    this.depth = depth
    this.opts.onDepth?.(depth)
  }
}
