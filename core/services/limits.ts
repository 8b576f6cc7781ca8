// Per-user limits and memory admission (config `limits:`, server.memory_budget_bytes): the one place that
// decides whether a user may open a session or a training run, keep another request pending or another
// sample queued, store more checkpoint bytes, or send a request this large, and whether a new run's
// memory fits the server's budget. What is stored (runs, sessions, checkpoints) is counted in the Store,
// which every process sharing it sees; what is in flight (futures, samples) is counted in this process.

import type { Logger } from 'pino'
import type { CheckpointRecord } from '../domain/checkpoint.js'
import { isCheckpointExpired } from '../domain/checkpoint.js'
import { keys } from '../domain/keys.js'
import { isSessionExpired, type SessionRecord } from '../domain/session.js'
import type { TrainingRunRecord } from '../domain/training-run.js'
import type { MemoryEstimate } from '../engine.js'
import { type ErrorCode, tuftError } from '../errors.js'
import type { Store } from '../persistence.js'

/** One user's limits; null: no limit. Declared here so core needs no config loader (config satisfies it). */
export interface UserLimits {
  weight: number
  max_training_runs: number | null
  max_lora_rank: number | null
  max_sessions: number | null
  max_pending_requests: number | null
  max_sampling_requests_queued: number | null
  max_checkpoint_bytes: number | null
  max_tokens_per_request: number | null
}

export interface LimitsSpec {
  per_user: UserLimits
  users: Readonly<Record<string, Partial<UserLimits>>>
}

export type LimitName = Exclude<keyof UserLimits, 'weight'>

/** Limits on what a user has in flight in this process. */
export type InFlightLimit = 'max_pending_requests' | 'max_sampling_requests_queued'

/** A user's standing against each limit (GET /api/v1/usage); per-request limits have no `used`. */
export type Quota = { weight: number } & Record<LimitName, { limit: number | null; used?: number }>

export interface LimitsServiceOptions {
  spec: LimitsSpec
  store: Store
  /** A session counts against max_sessions until it has missed heartbeats this long. */
  sessionExpiryMs: number
  memoryBudgetBytes: number
  log: Logger
}

interface Booking {
  model: string
  estimate: MemoryEstimate
}

const GIB = 1024 ** 3
const gib = (bytes: number) => `${(bytes / GIB).toFixed(2)} GiB`

function refused(code: ErrorCode, name: LimitName, value: number, detail: string) {
  return tuftError(code, `limit ${name} (${value}) reached: ${detail}`)
}

export class LimitsService {
  private readonly inFlight = new Map<string, number>()
  private readonly locks = new Map<string, Promise<void>>()
  private readonly booked = new Map<string, Booking>()

  constructor(private readonly opts: LimitsServiceOptions) {}

  /** The user's limits: per_user with the user's own overrides. */
  of(user: string): UserLimits {
    return { ...this.opts.spec.per_user, ...this.opts.spec.users[user] }
  }

  /** The user's fair-share weight (the schedulers divide engine time in proportion to it). */
  userWeight(user: string): number {
    return this.of(user).weight
  }

  // ---- per request (400) ----

  checkLoraRank(user: string, rank: number): void {
    const max = this.of(user).max_lora_rank
    if (max !== null && rank > max) {
      throw refused('TUFT_BAD_REQUEST', 'max_lora_rank', max, `LoRA rank ${rank} was asked for`)
    }
  }

  /** `tokens`: of a forward/forward_backward request, or prompt + num_samples × max_tokens of a sample. */
  checkTokens(user: string, tokens: number): void {
    const max = this.of(user).max_tokens_per_request
    if (max !== null && tokens > max) {
      throw refused('TUFT_BAD_REQUEST', 'max_tokens_per_request', max, `this request has ${tokens} tokens`)
    }
  }

  // ---- what the user holds (403) ----

  /** Runs `create` unless the user already has max_training_runs runs loaded (unload_model frees one). */
  admitTrainingRun<T>(user: string, create: () => Promise<T>): Promise<T> {
    return this.serial(`${user}\0runs`, async () => {
      const max = this.of(user).max_training_runs
      if (max !== null) {
        const used = await this.trainingRuns(user)
        if (used >= max) {
          throw refused(
            'TUFT_FORBIDDEN',
            'max_training_runs',
            max,
            `${used} training runs are loaded; unload one (unload_model) to create another`,
          )
        }
      }
      return create()
    })
  }

  /** Runs `create` unless the user already has max_sessions live sessions (they expire without heartbeats). */
  admitSession<T>(user: string, create: () => Promise<T>): Promise<T> {
    return this.serial(`${user}\0sessions`, async () => {
      const max = this.of(user).max_sessions
      if (max !== null) {
        const used = await this.sessions(user)
        if (used >= max) {
          throw refused(
            'TUFT_FORBIDDEN',
            'max_sessions',
            max,
            `${used} sessions are live; close clients you no longer use (a session ends when its heartbeats stop)`,
          )
        }
      }
      return create()
    })
  }

  /**
   * Runs `commit` (which records a checkpoint of `bytes`, replacing one of `replacing` bytes) unless the
   * user's checkpoints would then take more than max_checkpoint_bytes.
   */
  admitCheckpoint<T>(user: string, bytes: number, replacing: number, commit: () => Promise<T>): Promise<T> {
    return this.serial(`${user}\0checkpoints`, async () => {
      const max = this.of(user).max_checkpoint_bytes
      if (max !== null) {
        const used = await this.checkpointBytes(user)
        const after = used - replacing + bytes
        if (after > max) {
          throw refused(
            'TUFT_FORBIDDEN',
            'max_checkpoint_bytes',
            max,
            `checkpoints take ${used} bytes, ${after} with this one of ${bytes}; delete some first`,
          )
        }
      }
      return commit()
    })
  }

  // ---- in flight (429) ----

  /** Takes one of the user's slots under an in-flight limit (429 when none is left); call the answer to give it back. */
  enter(user: string, name: InFlightLimit): () => void {
    const key = `${user}\0${name}`
    const used = this.inFlight.get(key) ?? 0
    const max = this.of(user)[name]
    if (max !== null && used >= max) {
      const what = name === 'max_pending_requests' ? 'requests are pending' : 'sample requests are queued'
      throw refused('TUFT_BUSY', name, max, `${used} ${what}; retry when some have finished`)
    }
    this.inFlight.set(key, used + 1)
    let left = false
    return () => {
      if (left) return
      left = true
      const now = (this.inFlight.get(key) ?? 1) - 1
      if (now > 0) this.inFlight.set(key, now)
      else this.inFlight.delete(key)
    }
  }

  // ---- memory admission ----

  /**
   * Books a run's estimated memory on its model: 429 when the total would pass the budget (it frees as
   * runs are unloaded), 400 when the run could never fit. `force` books without refusing (a run
   * recovered after a restart is served whatever it costs). Booking a run twice books it once.
   */
  bookMemory(runId: string, model: string, estimate: MemoryEstimate | null, force = false): void {
    if (estimate === null || this.booked.has(runId)) return
    const budget = this.opts.memoryBudgetBytes
    const total = this.memoryAfter({ model, estimate })
    if (!force && total > budget) {
      const alone = estimate.adapterBytes + estimate.sharedBytes
      const detail = `this training run needs about ${gib(estimate.adapterBytes)}, the server would hold about ${gib(total)} of training memory`
      if (alone > budget)
        throw tuftError(
          'TUFT_BAD_REQUEST',
          `server.memory_budget_bytes (${budget}) is too small for this run: it needs about ${gib(estimate.adapterBytes)}, and the model's training about ${gib(estimate.sharedBytes)} (base weights, activations for server.max_batch_tokens); ask for a smaller LoRA rank, or the operator may lower server.max_batch_tokens`,
        )
      throw tuftError(
        'TUFT_BUSY',
        `server.memory_budget_bytes (${budget}) reached: ${detail}; retry after other runs are unloaded`,
      )
    }
    this.booked.set(runId, { model, estimate })
    this.opts.log.debug({ run: runId, model, bytes: estimate.adapterBytes, total }, 'training memory booked')
  }

  releaseMemory(runId: string): void {
    this.booked.delete(runId)
  }

  /** The budget and the estimated training memory booked now. */
  memory(): { budget_bytes: number; booked_bytes: number } {
    return { budget_bytes: this.opts.memoryBudgetBytes, booked_bytes: this.memoryAfter(null) }
  }

  /** Adapters, plus each model's shared memory once (the largest estimate among its runs). */
  private memoryAfter(extra: Booking | null): number {
    const shared = new Map<string, number>()
    let total = 0
    for (const b of extra ? [...this.booked.values(), extra] : this.booked.values()) {
      total += b.estimate.adapterBytes
      shared.set(b.model, Math.max(shared.get(b.model) ?? 0, b.estimate.sharedBytes))
    }
    for (const bytes of shared.values()) total += bytes
    return total
  }

  // ---- usage ----

  /** The user's standing against each of their limits. */
  async quota(user: string): Promise<Quota> {
    const l = this.of(user)
    const [runs, sessions, bytes] = await Promise.all([
      this.trainingRuns(user),
      this.sessions(user),
      this.checkpointBytes(user),
    ])
    const inFlight = (name: InFlightLimit) => this.inFlight.get(`${user}\0${name}`) ?? 0
    return {
      weight: l.weight,
      max_training_runs: { limit: l.max_training_runs, used: runs },
      max_sessions: { limit: l.max_sessions, used: sessions },
      max_pending_requests: { limit: l.max_pending_requests, used: inFlight('max_pending_requests') },
      max_sampling_requests_queued: {
        limit: l.max_sampling_requests_queued,
        used: inFlight('max_sampling_requests_queued'),
      },
      max_checkpoint_bytes: { limit: l.max_checkpoint_bytes, used: bytes },
      max_lora_rank: { limit: l.max_lora_rank },
      max_tokens_per_request: { limit: l.max_tokens_per_request },
    }
  }

  /** Users with limits of their own, or with runs, sessions or checkpoints stored, or requests in flight. */
  async knownUsers(): Promise<string[]> {
    const users = new Set(Object.keys(this.opts.spec.users))
    for (const key of this.inFlight.keys()) users.add(key.slice(0, key.indexOf('\0')))
    for (const prefix of [keys.runs(), keys.sessions(), keys.checkpoints()]) {
      for (const e of await this.opts.store.scan<{ owner: string }>(prefix)) users.add(e.doc.value.owner)
    }
    return [...users].sort()
  }

  private async trainingRuns(user: string): Promise<number> {
    const runs = await this.opts.store.scan<TrainingRunRecord>(keys.runs())
    return runs.filter(
      (e) =>
        e.doc.value.owner === user && (e.doc.value.state === 'creating' || e.doc.value.state === 'ready'),
    ).length
  }

  private async sessions(user: string): Promise<number> {
    const now = Date.now()
    const all = await this.opts.store.scan<SessionRecord>(keys.sessions())
    return all.filter(
      (e) => e.doc.value.owner === user && !isSessionExpired(e.doc.value, now, this.opts.sessionExpiryMs),
    ).length
  }

  private async checkpointBytes(user: string): Promise<number> {
    const now = Date.now()
    let bytes = 0
    for (const e of await this.opts.store.scan<CheckpointRecord>(keys.checkpoints())) {
      const c = e.doc.value
      if (c.owner === user && !isCheckpointExpired(c, now)) bytes += c.sizeBytes
    }
    return bytes
  }

  /** Runs `fn` after every earlier `fn` of the same key settled: a check and what it admits are one step. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve()
    const result = before.then(fn)
    const tail = result.then(
      () => undefined,
      () => undefined,
    )
    this.locks.set(key, tail)
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key)
    })
    return result
  }
}
