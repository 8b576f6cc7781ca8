// Futures (spec §4): every asynchronous operation gets a server-minted request id at once; its state
// and result live in the Store, and retrieve_future long-polls in-process waiters until it finishes.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { type FutureRecord, isFinished } from '../domain/future.js'
import { keys } from '../domain/keys.js'
import type { RequestTrace } from '../engine.js'
import type { FailureCategory } from '../errors.js'
import { clientError, tuftError } from '../errors.js'
import type { EventBus, FutureKind } from '../events.js'
import { newRequestId } from '../ids.js'
import type { Json, Store } from '../persistence.js'

export interface FutureServiceOptions {
  store: Store
  events: EventBus
  bootId: string
  /** Retention of finished futures (null: forever). */
  ttlMs: number | null
  /** Whether the process that accepted a future (its boot id) still runs; default: only this one. */
  isBootAlive?: (bootId: string) => Promise<boolean>
  /** A future whose process died may still have reached its durable point: its finished record, or null. */
  reconcileLost?: (record: FutureRecord) => Promise<FutureRecord | null>
  /** How often a poll re-reads a future that another live process is running. */
  watchIntervalMs?: number
  log?: Logger
}

export interface NewFuture {
  owner: string
  kind: FutureKind
  modelId: string | null
  modelName: string
  trace: Omit<RequestTrace, 'requestId'>
}

interface Live {
  record: FutureRecord
  trace: RequestTrace
  modelName: string
  startedAt: number | null
  waiters: Set<() => void>
  /** When a poll last started or ended: how we notice that a client went away. */
  lastPolledAt: number
}

type Outcome =
  | { state: 'done'; result: Json }
  | { state: 'failed'; error: { message: string; category: FailureCategory } }

export class FutureService {
  private readonly live = new Map<string, Live>()

  constructor(private readonly opts: FutureServiceOptions) {}

  async create(init: NewFuture): Promise<FutureRecord> {
    const record: FutureRecord = {
      id: newRequestId(),
      owner: init.owner,
      kind: init.kind,
      modelId: init.modelId,
      state: 'pending',
      boot: this.opts.bootId,
      createdAt: Date.now(),
      finishedAt: null,
      result: null,
      error: null,
    }
    const trace: RequestTrace = { requestId: record.id, ...init.trace }
    this.live.set(record.id, {
      record,
      trace,
      modelName: init.modelName,
      startedAt: null,
      waiters: new Set(),
      lastPolledAt: record.createdAt,
    })
    await this.write(record)
    this.opts.events.emit('future.queued', { trace, kind: record.kind, modelName: init.modelName })
    return record
  }

  /** The trace to hand to engine calls made for this future. */
  traceOf(id: string): RequestTrace {
    const live = this.live.get(id)
    if (!live) throw tuftError('TUFT_INTERNAL', `Future ${id} is not live in this process`)
    return live.trace
  }

  markRunning(id: string): void {
    const live = this.live.get(id)
    if (!live || live.startedAt !== null) return
    live.startedAt = Date.now()
    live.record.state = 'running'
    this.opts.events.emit('future.running', {
      trace: live.trace,
      kind: live.record.kind,
      modelName: live.modelName,
      waitedMs: live.startedAt - live.record.createdAt,
    })
  }

  /** Runs `work` as the body of future `id`, storing its result or its failure. Never rejects. */
  async run(id: string, work: () => Promise<Json>): Promise<void> {
    this.markRunning(id)
    let outcome: Outcome
    try {
      outcome = { state: 'done', result: await work() }
    } catch (err) {
      outcome = { state: 'failed', error: this.failureOf(id, err) }
    }
    try {
      await this.finish(id, outcome)
    } catch (err) {
      // The store refused the outcome (e.g. it closed during shutdown). Pollers of this process were
      // answered from memory; a later process reports the future as lost, which the SDK handles.
      this.opts.log?.error({ err, request: id }, 'could not store a finished future')
    }
  }

  /**
   * The `{error, category}` the SDK reports as RequestFailedError; an internal fault is logged here
   * under the correlation id its message gives the client.
   */
  private failureOf(id: string, err: unknown): { message: string; category: FailureCategory } {
    const shown = clientError(err)
    if (shown.correlationId !== null)
      this.opts.log?.error({ err, request: id, correlationId: shown.correlationId }, 'operation failed')
    return { message: shown.message, category: shown.category }
  }

  async fail(id: string, err: unknown): Promise<void> {
    await this.finish(id, { state: 'failed', error: this.failureOf(id, err) })
  }

  /**
   * The future as its owner may see it: 404 for unknown ids and for other users' futures (no
   * existence leak). Work that was pending in a process that has since stopped is settled (spec §4.5):
   * finished when it reached its durable point, 410 for samples (the client resubmits them), otherwise
   * a terminal failure of category server.
   */
  async get(id: string, userId: string): Promise<FutureRecord> {
    const own = this.live.get(id)?.record
    const doc = own ? null : await this.opts.store.get<FutureRecord>(keys.future(id))
    const record = own ?? doc?.value
    if (!record || record.owner !== userId) throw tuftError('TUFT_NOT_FOUND', `Unknown request_id '${id}'`)
    if (own || isFinished(record) || (await this.isBootAlive(record.boot))) return record
    return this.settleLost(record, doc!.version)
  }

  /**
   * Settles future `id` at once if a process that has since stopped left it unfinished (as get would):
   * for a run being taken over, before new work moves its durable point past the one that finishes it.
   */
  async settleIfLost(id: string): Promise<void> {
    if (this.live.has(id)) return
    const doc = await this.opts.store.get<FutureRecord>(keys.future(id))
    if (!doc || isFinished(doc.value) || (await this.isBootAlive(doc.value.boot))) return
    await this.settleLost(doc.value, doc.version)
  }

  private isBootAlive(bootId: string): Promise<boolean> {
    if (bootId === this.opts.bootId) return Promise.resolve(true)
    return this.opts.isBootAlive?.(bootId) ?? Promise.resolve(false)
  }

  private async settleLost(record: FutureRecord, version: number): Promise<FutureRecord> {
    const reconciled = await this.opts.reconcileLost?.(record)
    if (!reconciled && record.kind === 'sample') {
      throw tuftError(
        'TUFT_FUTURE_EXPIRED',
        `Request ${record.id} was lost when the server restarted; submit the operation again`,
      )
    }
    const settled: FutureRecord = reconciled ?? {
      ...record,
      state: 'failed',
      finishedAt: Date.now(),
      error: {
        message: `Request ${record.id} (${record.kind}) was lost because the server restarted before it finished; submit the operation again`,
        category: 'server',
      },
    }
    const ttl = this.opts.ttlMs
    const written = await this.opts.store.put(keys.future(record.id), settled, {
      ifVersion: version,
      ...(ttl === null ? {} : { ttlMs: ttl }),
    })
    // Another process settled it first: report what it wrote.
    if (written === null)
      return (await this.opts.store.get<FutureRecord>(keys.future(record.id)))?.value ?? settled
    return settled
  }

  /** Long-poll: resolves with the record once finished, or as it stands after timeoutMs / on abort. */
  async wait(id: string, userId: string, timeoutMs: number, signal?: AbortSignal): Promise<FutureRecord> {
    const record = await this.get(id, userId)
    if (isFinished(record) || timeoutMs <= 0 || signal?.aborted) return record
    const live = this.live.get(id)
    if (!live) return this.watch(id, userId, timeoutMs, signal)
    live.lastPolledAt = Date.now()
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        live.lastPolledAt = Date.now()
        live.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, timeoutMs)
      live.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
    return live.record
  }

  /** A future another live process is running: re-read from the store until it finishes or time is up. */
  private async watch(
    id: string,
    userId: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<FutureRecord> {
    const deadline = Date.now() + timeoutMs
    const every = this.opts.watchIntervalMs ?? 100
    for (;;) {
      try {
        await sleep(Math.max(1, Math.min(every, deadline - Date.now())), undefined, { signal, ref: false })
      } catch {
        // Aborted: the poller went away; answer with the record as it stands.
      }
      const record = await this.get(id, userId)
      if (isFinished(record) || Date.now() >= deadline || signal?.aborted) return record
    }
  }

  /** The base model an unfinished future of this process works on. */
  modelNameOf(id: string): string | undefined {
    return this.live.get(id)?.modelName
  }

  /** True when nobody has polled unfinished future `id` for longer than `graceMs` (its client went away). */
  isAbandoned(id: string, graceMs: number, now = Date.now()): boolean {
    const live = this.live.get(id)
    return live !== undefined && live.waiters.size === 0 && now - live.lastPolledAt > graceMs
  }

  private async finish(id: string, outcome: Outcome): Promise<void> {
    const live = this.live.get(id)
    if (!live) return
    const record = live.record
    record.state = outcome.state
    record.finishedAt = Date.now()
    if (outcome.state === 'done') record.result = outcome.result
    else record.error = outcome.error
    try {
      await this.write(record)
    } finally {
      this.live.delete(id)
      for (const wake of [...live.waiters]) wake()
      this.opts.events.emit('future.done', {
        trace: live.trace,
        kind: record.kind,
        modelName: live.modelName,
        ok: outcome.state === 'done',
        ...(outcome.state === 'failed' ? { error: outcome.error.message } : {}),
        totalMs: record.finishedAt - record.createdAt,
      })
    }
  }

  private async write(record: FutureRecord): Promise<void> {
    const ttl = this.opts.ttlMs
    await this.opts.store.put(keys.future(record.id), record, ttl === null ? {} : { ttlMs: ttl })
  }
}
