// Per-run ordering of training operations (spec §4.6): operations execute one at a time in seq_id
// order. A gap (a seq_id that was rejected or never arrives) holds later work only while the missing
// request could still be arriving, and never longer than gapWaitMs; duplicates return the first future.

import { tuftError } from '../errors.js'

export interface SequencerOptions {
  /** Upper bound on how long a gap holds later operations. */
  gapWaitMs: number
  /**
   * True while a request that might carry the missing seq_id is still being received (e.g. the same
   * user has a training submission in flight). When false, a gap is released at once.
   */
  mayStillArrive: () => boolean
  /** Called when a gap was skipped (for logs). */
  onGapSkipped?: (missing: number[]) => void
  /** A run recovered after a restart: seq_ids up to `released` are spent; `seen` answers resubmissions. */
  resume?: { released: number; seen: readonly (readonly [number, string])[] }
}

export type SubmitOutcome = { kind: 'accepted' } | { kind: 'duplicate'; futureId: string }

/** How many recent seq_ids are remembered for duplicate detection. */
const REMEMBERED = 4096

export class Sequencer {
  /** Highest seq_id released for execution (or skipped). */
  private released = 0
  private readonly seen = new Map<number, string>()
  private readonly waiting = new Map<number, () => Promise<void>>()
  private readonly skipped = new Set<number>()
  private gapTimer: NodeJS.Timeout | null = null
  private tail: Promise<void> = Promise.resolve()
  private closed = false

  /**
   * Highest seq_id ever accepted. Skipped seq_ids do not count: a submission that failed (say with a
   * 503) is re-sent with the same seq_id by the SDK's retry layer, and may still run as long as nothing
   * after it was accepted (spec §4.6: accept any seq_id greater than the last one seen).
   */
  private accepted = 0

  constructor(private readonly opts: SequencerOptions) {
    this.released = opts.resume?.released ?? 0
    // After a restart every seq_id up to the recovered point counts as spent.
    this.accepted = this.released
    for (const [seq, future] of opts.resume?.seen ?? []) this.seen.set(seq, future)
  }

  /** The future that already accepted seqId, if any. */
  duplicateOf(seqId: number): string | undefined {
    return this.seen.get(seqId)
  }

  /**
   * Accepts operation seqId with its future; `run` executes after every smaller accepted seq_id and
   * must not reject. A seq_id below one already accepted (and not a duplicate) is a 400.
   */
  submit(seqId: number, futureId: string, run: () => Promise<void>): SubmitOutcome {
    this.check(seqId)
    const existing = this.seen.get(seqId)
    if (existing !== undefined) return { kind: 'duplicate', futureId: existing }
    // A re-sent seq_id that was skipped: nothing after it ran, so it takes its place in the order again.
    if (seqId <= this.released) this.released = seqId - 1
    this.accepted = Math.max(this.accepted, seqId)
    this.seen.set(seqId, futureId)
    this.waiting.set(seqId, run)
    this.drain()
    return { kind: 'accepted' }
  }

  /** Throws the 400 a late or invalid seq_id gets; call before doing work for a submission. */
  check(seqId: number): void {
    if (this.closed) throw tuftError('TUFT_BAD_REQUEST', 'This training run no longer accepts operations')
    if (!Number.isInteger(seqId) || seqId < 1) {
      throw tuftError('TUFT_BAD_REQUEST', `seq_id must be an integer >= 1, got ${seqId}`)
    }
    if (seqId <= this.released && seqId <= this.accepted && !this.seen.has(seqId)) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `seq_id ${seqId} arrived after seq_id ${this.accepted} was already accepted; operations must be submitted in order`,
      )
    }
  }

  /** Marks seqId as never coming (its submission was rejected), closing a gap at once. */
  skip(seqId: number): void {
    if (seqId > this.released && !this.seen.has(seqId)) {
      this.skipped.add(seqId)
      this.drain()
    }
  }

  /** Re-evaluates a held gap (call when mayStillArrive may have become false). */
  poke(): void {
    this.drain()
  }

  /** Runs `task` after everything accepted so far, outside seq_id numbering (e.g. unload). */
  after(task: () => Promise<void>): Promise<void> {
    const next = this.tail.then(task)
    this.tail = next.catch(() => {})
    return next
  }

  /** Resolves when every released operation has finished. */
  idle(): Promise<void> {
    return this.tail
  }

  /** Closes and gives up every operation still waiting for its turn; returns their futures to fail. */
  abandon(): string[] {
    const futures = [...this.waiting.keys()].map((seq) => this.seen.get(seq)!)
    this.waiting.clear()
    this.close()
    return futures
  }

  close(): void {
    this.closed = true
    if (this.gapTimer) clearTimeout(this.gapTimer)
    this.gapTimer = null
  }

  private drain(): void {
    for (;;) {
      const next = this.released + 1
      const run = this.waiting.get(next)
      if (run) {
        this.waiting.delete(next)
        this.released = next
        this.tail = this.tail.then(run).catch(() => {})
      } else if (this.skipped.delete(next)) {
        this.released = next
      } else break
    }
    this.forget()
    if (this.waiting.size === 0) {
      if (this.gapTimer) clearTimeout(this.gapTimer)
      this.gapTimer = null
      return
    }
    if (!this.opts.mayStillArrive() || this.opts.gapWaitMs <= 0) {
      this.skipGap()
      return
    }
    if (!this.gapTimer) {
      this.gapTimer = setTimeout(() => {
        this.gapTimer = null
        this.skipGap()
      }, this.opts.gapWaitMs)
      this.gapTimer.unref()
    }
  }

  /** Gives up on the missing seq_ids below the smallest waiting one. */
  private skipGap(): void {
    if (this.waiting.size === 0) return
    const lowest = Math.min(...this.waiting.keys())
    const missing: number[] = []
    for (let s = this.released + 1; s < lowest && missing.length < 16; s++) {
      if (!this.skipped.has(s)) missing.push(s)
    }
    for (const s of this.skipped) if (s < lowest) this.skipped.delete(s)
    this.released = lowest - 1
    if (missing.length > 0) this.opts.onGapSkipped?.(missing)
    this.drain()
  }

  private forget(): void {
    if (this.seen.size <= REMEMBERED) return
    const floor = this.released - REMEMBERED
    for (const seq of this.seen.keys()) if (seq < floor) this.seen.delete(seq)
    for (const seq of this.skipped) if (seq <= this.released) this.skipped.delete(seq)
  }
}
