// Batch completion feed of retrieve_futures (SDK ≥ 0.26, sdk-after-0.25.md §2): per sampler, the sample
// requests of this process that finished or failed, in completion order, numbered by a cursor. Each
// (possibly cloned) SamplingClient long-polls its part of the feed, then fetches every payload through
// retrieve_future. The feed lives in this process only, so it is offered only where every poll of a
// sampler reaches the process that ran its samples and nothing outlives a restart (memory store).

import type { EventBus } from '../events.js'

/** A completion as the SDK's `FutureCompletion` union names it. */
export type Completion = { state: 'finished'; request_id: string } | { state: 'failed'; request_id: string }

export interface CompletionPage {
  completions: Completion[]
  cursor: number
}

/** Pickled SamplingClients number their seq_ids from a multiple of 10^9; the quotient names the copy. */
export const CLONE_SEQ_SPAN = 1_000_000_000

/** A completion nobody fetched for this long belongs to a client that does not use the feed. */
const KEEP_MS = 10 * 60_000
/** Bounds one sampler's unread feed whatever the clients do. */
const MAX_PER_SAMPLER = 10_000
/** A completion whose submission was never announced (the submission failed late) is dropped after this. */
const EARLY_GRACE_MS = 60_000

interface Entry {
  seq: number
  clone: number
  at: number
  completion: Completion
}

interface Feed {
  sessionId: string
  next: number
  entries: Entry[]
  /** Wakes long-polls of the clone that just got an entry. */
  waiters: Set<(clone: number) => void>
}

export class SampleCompletions {
  private readonly feeds = new Map<string, Feed>()
  /** request id → where its completion goes, from submission until it completes. */
  private readonly routes = new Map<string, { samplerId: string; clone: number }>()
  /** Completions that arrived before their submission was announced (a very fast engine). */
  private readonly early = new Map<string, { completion: Completion; sessionId: string; at: number }>()

  constructor(events: EventBus) {
    events.on('future.done', ({ trace, kind, ok }) => {
      if (kind !== 'sample') return
      const completion: Completion = { state: ok ? 'finished' : 'failed', request_id: trace.requestId }
      const sessionId = trace.sessionId ?? ''
      const route = this.routes.get(trace.requestId)
      if (!route) {
        this.early.set(trace.requestId, { completion, sessionId, at: Date.now() })
        return
      }
      this.routes.delete(trace.requestId)
      this.append(route.samplerId, sessionId, route.clone, completion)
    })
  }

  /** Announces a sample submission (called again for a de-duplicated resubmission: harmless). */
  submitted(requestId: string, samplerId: string, seqId: number | null | undefined): void {
    const clone = Math.floor((seqId ?? 0) / CLONE_SEQ_SPAN)
    const early = this.early.get(requestId)
    if (early) {
      this.early.delete(requestId)
      this.append(samplerId, early.sessionId, clone, early.completion)
    } else {
      this.routes.set(requestId, { samplerId, clone })
    }
    const now = Date.now()
    for (const [id, e] of this.early) if (now - e.at > EARLY_GRACE_MS) this.early.delete(id)
  }

  /**
   * The clone's completions after `prevCursor`, waiting up to `timeoutMs` for one; those at or before
   * `prevCursor` count as read and are dropped. A cursor this feed never issued (another process or an
   * earlier boot) restarts from the beginning.
   */
  async poll(
    sampler: { id: string; sessionId: string },
    clone: number,
    prevCursor: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<CompletionPage> {
    const feed = this.feed(sampler.id, sampler.sessionId)
    const from = prevCursor < feed.next ? prevCursor : 0
    this.trim(feed, (e) => e.clone === clone && e.seq <= from)
    const page = this.page(feed, clone, from)
    if (page.completions.length > 0 || timeoutMs <= 0 || signal?.aborted) return page
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        feed.waiters.delete(wake)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const wake = (c: number) => {
        if (c === clone) done()
      }
      const timer = setTimeout(done, timeoutMs)
      feed.waiters.add(wake)
      signal?.addEventListener('abort', done, { once: true })
    })
    return this.page(feed, clone, from)
  }

  /** A session expired: its samplers' feeds go. */
  dropSession(sessionId: string): void {
    for (const [id, feed] of this.feeds) if (feed.sessionId === sessionId) this.feeds.delete(id)
  }

  private page(feed: Feed, clone: number, from: number): CompletionPage {
    const entries = feed.entries.filter((e) => e.clone === clone && e.seq > from)
    return { completions: entries.map((e) => e.completion), cursor: entries.at(-1)?.seq ?? from }
  }

  private feed(samplerId: string, sessionId: string): Feed {
    let feed = this.feeds.get(samplerId)
    if (!feed) {
      feed = { sessionId, next: 1, entries: [], waiters: new Set() }
      this.feeds.set(samplerId, feed)
    }
    return feed
  }

  private append(samplerId: string, sessionId: string, clone: number, completion: Completion): void {
    const feed = this.feed(samplerId, sessionId)
    const now = Date.now()
    this.trim(feed, (e) => now - e.at > KEEP_MS)
    feed.entries.push({ seq: feed.next++, clone, at: now, completion })
    if (feed.entries.length > MAX_PER_SAMPLER) feed.entries.shift()
    for (const wake of [...feed.waiters]) wake(clone)
  }

  private trim(feed: Feed, drop: (e: Entry) => boolean): void {
    feed.entries = feed.entries.filter((e) => !drop(e))
  }
}
