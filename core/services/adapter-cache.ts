// Sampler adapters resident in one sampling engine: staged and loaded on first use, pinned while
// requests use them, and unloaded least-recently-used beyond a bound, so adapters never pile up
// (ARCHITECTURE §8). PEFT directories reach the engine through its AdapterStaging.

import type { Logger } from 'pino'
import type { AdapterId, AdapterRef, SamplingEngine } from '../engine.js'
import { fileStaging } from '../staging.js'

/** An adapter as core holds it: a snapshot inside the engine, or a PEFT directory on this host. */
export type LocalAdapter = { kind: 'snapshot'; id: AdapterId } | { kind: 'peft'; id: AdapterId; dir: string }

/** An adapter loaded and pinned for one request: the ref to sample with, and the pin's release. */
export interface PinnedAdapter {
  ref: AdapterRef
  release: () => void
}

interface Entry {
  local: LocalAdapter
  /** Settles with the engine's ref once the adapter is staged and loaded. */
  loading: Promise<AdapterRef>
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

  /** Loads `local` if needed and pins it for one request. */
  async acquire(local: LocalAdapter): Promise<PinnedAdapter> {
    let entry = this.entries.get(local.id)
    if (entry) {
      this.entries.delete(local.id)
    } else {
      entry = { local, loading: this.load(local), users: 0, retired: false }
    }
    this.entries.set(local.id, entry)
    const pinned = entry
    pinned.users++
    let ref: AdapterRef
    try {
      ref = await pinned.loading
    } catch (err) {
      pinned.users--
      if (this.entries.get(local.id) === pinned) this.entries.delete(local.id)
      throw err
    }
    this.trim()
    let released = false
    const release = () => {
      if (released) return
      released = true
      pinned.users--
      if (pinned.retired && pinned.users === 0) this.unload(pinned)
      else this.trim()
    }
    return { ref, release }
  }

  /** Frees `local` in the engine now, or once its last request is done; later use needs a new load. */
  retire(local: LocalAdapter): void {
    const entry = this.entries.get(local.id)
    if (!entry) {
      // Never loaded here, but a snapshot nobody sampled still lives in the engine.
      if (local.kind === 'snapshot') {
        this.unload({ local, loading: Promise.resolve(local), users: 0, retired: true })
      }
      return
    }
    this.entries.delete(local.id)
    entry.retired = true
    if (entry.users === 0) this.unload(entry)
  }

  size(): number {
    return this.entries.size
  }

  /** Stages a PEFT directory (a staged copy whose load fails is released again), then loads it. */
  private async load(local: LocalAdapter): Promise<AdapterRef> {
    const engine = this.engine()
    if (local.kind === 'snapshot') {
      await engine.loadAdapter(local)
      return local
    }
    const staging = engine.staging ?? fileStaging
    const ref: AdapterRef = { kind: 'peft', id: local.id, uri: await staging.stage(local.id, local.dir) }
    try {
      await engine.loadAdapter(ref)
    } catch (err) {
      await staging.release(ref.id, ref.uri).catch(() => {})
      throw err
    }
    return ref
  }

  /**
   * In-memory snapshots are neither counted nor evicted: once unloaded they cannot be loaded again,
   * and their owner (the sampling service) bounds and retires them.
   */
  private trim(): void {
    let loadable = 0
    for (const entry of this.entries.values()) if (entry.local.kind !== 'snapshot') loadable++
    for (const [id, entry] of this.entries) {
      if (loadable <= this.limit) return
      if (entry.users === 0 && entry.local.kind !== 'snapshot') {
        this.entries.delete(id)
        this.unload(entry)
        loadable--
      }
    }
  }

  private unload(entry: Entry): void {
    entry.loading
      .then(async (ref) => {
        const engine = this.engine()
        await engine.unloadAdapter(ref)
        if (ref.kind === 'peft') await (engine.staging ?? fileStaging).release(ref.id, ref.uri)
      })
      .catch((err: unknown) =>
        this.log.warn({ err, adapter: entry.local.id }, 'could not unload a sampler adapter'),
      )
  }
}
