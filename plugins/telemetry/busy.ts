// Engine busy accounting: how long at least one call was in flight, as a running total and as the
// fraction of recent wall time, for the tuft.engine.busy.* instruments.

/** Shortest window a fraction is computed over; observations closer together reuse the last value. */
const MIN_WINDOW_MS = 1000

export class BusyTracker {
  #inFlight = 0
  #since = 0
  #busyMs = 0
  #markAt: number
  #markBusyMs = 0
  #fraction = 0
  readonly #now: () => number

  constructor(now: () => number = performance.now.bind(performance)) {
    this.#now = now
    this.#markAt = now()
  }

  begin(): void {
    if (this.#inFlight++ === 0) this.#since = this.#now()
  }

  end(): void {
    if (--this.#inFlight === 0) this.#busyMs += this.#now() - this.#since
  }

  /** Total busy time, including the call in flight right now. */
  busySeconds(): number {
    return this.#busyAt(this.#now()) / 1000
  }

  /**
   * Busy fraction since the previous window closed. Several metric readers may observe it; each sees
   * the latest closed window, which is what a gauge of "recent utilisation" means.
   */
  fraction(): number {
    const now = this.#now()
    const elapsed = now - this.#markAt
    if (elapsed < MIN_WINDOW_MS) return this.#fraction
    const busy = this.#busyAt(now)
    this.#fraction = Math.min(1, (busy - this.#markBusyMs) / elapsed)
    this.#markAt = now
    this.#markBusyMs = busy
    return this.#fraction
  }

  #busyAt(now: number): number {
    return this.#busyMs + (this.#inFlight > 0 ? now - this.#since : 0)
  }
}
