// Per-user usage metering in Tinker's billing units, fed by the `usage` domain events: running totals
// per user and base model, and hourly buckets shaped like the billing usage events (spec §3.25),
// including checkpoint storage integrated over time into gigabyte-hours. Lives as long as the process.

import type { EventBus, TuftEvents } from '../../core/events.js'
import type { UsageTotals, UserUsage } from './usage-wire.js'

export type { UsageTotals, UserUsage }

type UsageEvent = TuftEvents['usage'][0]

const HOUR_MS = 3_600_000
const BYTE_MS_PER_GB_HOUR = 1e9 * HOUR_MS
/** Buckets older than this are dropped: the process keeps a month of billing history. */
const RETENTION_MS = 31 * 24 * HOUR_MS

/** The strict event_info shapes of the billing API. */
export type BillingEventInfo =
  | { type: 'training'; token_count: number }
  | { type: 'sampling_prefill'; cached: boolean; token_count: number }
  | { type: 'sampling_sample'; token_count: number }
  | { type: 'checkpoint'; count: number }
  | { type: 'storage'; gigabyte_hours: number }

export interface BillingEvent {
  bucket_start: string
  bucket_end: string
  base_model: string
  user_id: string
  user_name: string
  session_id: string | null
  project_id: string | null
  event_info: BillingEventInfo
}

export interface BillingUsage {
  data: BillingEvent[]
  sessions: Record<string, { user_metadata: Record<string, string> }>
}

interface Bucket {
  start: number
  userId: string
  modelName: string
  sessionId: string | null
  training: number
  prefill: number
  sampled: number
  checkpoints: number
  storageByteMs: number
}

interface Storage {
  bytes: number
  /** Storage has been accounted up to this instant. */
  since: number
}

function zero(): UsageTotals {
  return {
    training_tokens: 0,
    prefill_tokens: 0,
    sampled_tokens: 0,
    checkpoint_bytes: 0,
    checkpoints_saved: 0,
    storage_gigabyte_hours: 0,
  }
}

export class UsageMeter {
  readonly #now: () => number
  /** user → model → totals (storage_gigabyte_hours settled lazily from #storage). */
  readonly #totals = new Map<string, Map<string, UsageTotals>>()
  readonly #buckets = new Map<string, Bucket>()
  readonly #storage = new Map<string, { userId: string; modelName: string; state: Storage }>()
  #oldestBucket = Number.POSITIVE_INFINITY

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now
  }

  /** Subscribes to the bus; the returned function unsubscribes. */
  observe(bus: EventBus): () => void {
    const listener = (e: UsageEvent): void => this.record(e)
    bus.on('usage', listener)
    return () => bus.off('usage', listener)
  }

  record(e: UsageEvent): void {
    if (!Number.isFinite(e.amount) || e.amount === 0) return
    const now = this.#now()
    const totals = this.#modelTotals(e.userId, e.modelName)
    if (e.kind === 'checkpoint_bytes') {
      this.#settleStorage(e.userId, e.modelName, now)
      const storage = this.#storageOf(e.userId, e.modelName, now)
      storage.bytes = Math.max(0, storage.bytes + e.amount)
      totals.checkpoint_bytes = storage.bytes
      if (e.amount > 0) {
        totals.checkpoints_saved += 1
        this.#bucket(now, e.userId, e.modelName, e.sessionId ?? null).checkpoints += 1
      }
      return
    }
    const bucket = this.#bucket(now, e.userId, e.modelName, e.sessionId ?? null)
    if (e.kind === 'training_tokens') {
      totals.training_tokens += e.amount
      bucket.training += e.amount
    } else if (e.kind === 'prefill_tokens') {
      totals.prefill_tokens += e.amount
      bucket.prefill += e.amount
    } else {
      totals.sampled_tokens += e.amount
      bucket.sampled += e.amount
    }
  }

  /** One user's usage; zeros for a user never seen. */
  user(userId: string): UserUsage {
    this.#settleAll(this.#now())
    const models: Record<string, UsageTotals> = {}
    const totals = zero()
    for (const [model, t] of this.#totals.get(userId) ?? []) {
      models[model] = { ...t }
      for (const key of Object.keys(totals) as (keyof UsageTotals)[]) totals[key] += t[key]
    }
    return { user_id: userId, totals, models }
  }

  /** Every user with any recorded usage, sorted by id. */
  all(): UserUsage[] {
    return [...this.#totals.keys()].sort().map((u) => this.user(u))
  }

  /** Billing events of buckets starting in [from, to), for one user or (null) everybody. */
  billing(userId: string | null, from: number, to: number): BillingUsage {
    this.#settleAll(this.#now())
    const data: BillingEvent[] = []
    const sessions: BillingUsage['sessions'] = {}
    const rows = [...this.#buckets.values()]
      .filter((b) => (userId === null || b.userId === userId) && b.start >= from && b.start < to)
      .sort(
        (a, b) =>
          a.start - b.start || a.userId.localeCompare(b.userId) || a.modelName.localeCompare(b.modelName),
      )
    for (const b of rows) {
      const base = {
        bucket_start: new Date(b.start).toISOString(),
        bucket_end: new Date(b.start + HOUR_MS).toISOString(),
        base_model: b.modelName,
        user_id: b.userId,
        user_name: b.userId,
        session_id: b.sessionId,
        project_id: null,
      }
      const infos: BillingEventInfo[] = []
      if (b.training > 0) infos.push({ type: 'training', token_count: b.training })
      if (b.prefill > 0) infos.push({ type: 'sampling_prefill', cached: false, token_count: b.prefill })
      if (b.sampled > 0) infos.push({ type: 'sampling_sample', token_count: b.sampled })
      if (b.checkpoints > 0) infos.push({ type: 'checkpoint', count: b.checkpoints })
      if (b.storageByteMs > 0)
        infos.push({ type: 'storage', gigabyte_hours: b.storageByteMs / BYTE_MS_PER_GB_HOUR })
      for (const event_info of infos) data.push({ ...base, event_info })
      if (infos.length > 0 && b.sessionId !== null) sessions[b.sessionId] = { user_metadata: {} }
    }
    return { data, sessions }
  }

  #modelTotals(userId: string, modelName: string): UsageTotals {
    let byModel = this.#totals.get(userId)
    if (byModel === undefined) {
      byModel = new Map()
      this.#totals.set(userId, byModel)
    }
    let totals = byModel.get(modelName)
    if (totals === undefined) {
      totals = zero()
      byModel.set(modelName, totals)
    }
    return totals
  }

  #bucket(at: number, userId: string, modelName: string, sessionId: string | null): Bucket {
    const start = at - (at % HOUR_MS)
    const key = `${start}\u0000${userId}\u0000${modelName}\u0000${sessionId ?? ''}`
    let bucket = this.#buckets.get(key)
    if (bucket === undefined) {
      bucket = {
        start,
        userId,
        modelName,
        sessionId,
        training: 0,
        prefill: 0,
        sampled: 0,
        checkpoints: 0,
        storageByteMs: 0,
      }
      this.#buckets.set(key, bucket)
      this.#oldestBucket = Math.min(this.#oldestBucket, start)
      this.#prune(at)
    }
    return bucket
  }

  #prune(now: number): void {
    const horizon = now - RETENTION_MS
    if (this.#oldestBucket >= horizon) return
    let oldest = Number.POSITIVE_INFINITY
    for (const [key, b] of this.#buckets) {
      if (b.start < horizon) this.#buckets.delete(key)
      else oldest = Math.min(oldest, b.start)
    }
    this.#oldestBucket = oldest
  }

  #storageOf(userId: string, modelName: string, now: number): Storage {
    const key = `${userId}\u0000${modelName}`
    let entry = this.#storage.get(key)
    if (entry === undefined) {
      entry = { userId, modelName, state: { bytes: 0, since: now } }
      this.#storage.set(key, entry)
    }
    return entry.state
  }

  /** Accounts stored bytes × time up to `now`, split across the hourly buckets it spans. */
  #settleStorage(userId: string, modelName: string, now: number): void {
    const storage = this.#storage.get(`${userId}\u0000${modelName}`)?.state
    if (storage === undefined || now <= storage.since) return
    if (storage.bytes > 0) {
      let t = storage.since
      while (t < now) {
        const end = Math.min(now, t - (t % HOUR_MS) + HOUR_MS)
        this.#bucket(t, userId, modelName, null).storageByteMs += storage.bytes * (end - t)
        this.#modelTotals(userId, modelName).storage_gigabyte_hours +=
          (storage.bytes * (end - t)) / BYTE_MS_PER_GB_HOUR
        t = end
      }
    }
    storage.since = now
  }

  #settleAll(now: number): void {
    for (const { userId, modelName } of this.#storage.values()) this.#settleStorage(userId, modelName, now)
  }
}
