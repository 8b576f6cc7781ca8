// Sampler adapters resident in one sampling engine: loaded on first use, pinned while requests use
// them, and unloaded least-recently-used beyond a bound, so adapters never pile up (ARCHITECTURE §8).

import type { Logger } from 'pino'
import type { AdapterRef, SamplingEngine } from '../engine.js'

interface Entry {
  ref: AdapterRef
  loading: Promise<void>
  /** Requests currently sampling with this adapter. */
  users: number
  /** Unload as soon as the last user is done. */
  retired: boolean
}

export class AdapterCache {
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>()

  constructor(
    private readonly engine: () => SamplingEngine,
    private readonly limit: number,
    private readonly log: Logger,
  ) {}

  /** Loads `ref` if needed and pins it for one request; call the returned function when done. */
  async acquire(ref: AdapterRef): Promise<() => void> {
    let entry = this.entries.get(ref.id)
    if (entry) {
      this.entries.delete(ref.id)
    } else {
      entry = { ref, loading: this.engine().loadAdapter(ref), users: 0, retired: false }
    }
    this.entries.set(ref.id, entry)
    const pinned = entry
    pinned.users++
    try {
      await pinned.loading
    } catch (err) {
      pinned.users--
      if (this.entries.get(ref.id) === pinned) this.entries.delete(ref.id)
      throw err
    }
    this.trim()
    let released = false
    return () => {
      if (released) return
      released = true
      pinned.users--
      if (pinned.retired && pinned.users === 0) this.unload(pinned)
      else this.trim()
    }
  }

  /** Frees `ref` in the engine now, or once its last request is done; later use needs a new load. */
  retire(ref: AdapterRef): void {
    const entry = this.entries.get(ref.id)
    if (!entry) {
      // Never loaded here (e.g. a snapshot nobody sampled): the engine may still hold it.
      this.unload({ ref, loading: Promise.resolve(), users: 0, retired: true })
      return
    }
    this.entries.delete(ref.id)
    entry.retired = true
    if (entry.users === 0) this.unload(entry)
  }

  size(): number {
    return this.entries.size
  }

  /**
   * In-memory snapshots are neither counted nor evicted: once unloaded they cannot be loaded again,
   * and their owner (the sampling service) bounds and retires them.
   */
  private trim(): void {
    let loadable = 0
    for (const entry of this.entries.values()) if (entry.ref.kind !== 'snapshot') loadable++
    for (const [id, entry] of this.entries) {
      if (loadable <= this.limit) return
      if (entry.users === 0 && entry.ref.kind !== 'snapshot') {
        this.entries.delete(id)
        this.unload(entry)
        loadable--
      }
    }
  }

  private unload(entry: Entry): void {
    entry.loading
      .then(() => this.engine().unloadAdapter(entry.ref))
      .catch((err: unknown) =>
        this.log.warn({ err, adapter: entry.ref.id }, 'could not unload a sampler adapter'),
      )
  }
}
