// The in-process key table behind the memory and file stores: JSON text per key with its version
// and absolute expiry, expired lazily on access and in bulk by sweep().

import type { Json, StoredDoc } from '../core/persistence.js'
import { byKey } from './common.js'

export interface Entry {
  /** The document as JSON text (parsed on every read, so callers never share objects). */
  text: string
  version: number
  /** Epoch milliseconds after which the key is gone; null = never. */
  expiresAt: number | null
}

export function isLive(entry: Entry, now: number): boolean {
  return entry.expiresAt === null || entry.expiresAt > now
}

export function toDoc<T extends Json>(entry: Entry): StoredDoc<T> {
  return { value: JSON.parse(entry.text) as T, version: entry.version }
}

export class Table {
  private readonly entries = new Map<string, Entry>()

  get size(): number {
    return this.entries.size
  }

  /** The live entry for key; an expired one is dropped on the way. */
  get(key: string, now = Date.now()): Entry | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (isLive(entry, now)) return entry
    this.entries.delete(key)
    return undefined
  }

  set(key: string, entry: Entry): void {
    this.entries.set(key, entry)
  }

  /** True when a live entry was removed. */
  delete(key: string, now = Date.now()): boolean {
    const live = this.get(key, now) !== undefined
    this.entries.delete(key)
    return live
  }

  scan(prefix: string, now = Date.now()): { key: string; entry: Entry }[] {
    const found: { key: string; entry: Entry }[] = []
    for (const [key, entry] of this.entries) {
      if (key.startsWith(prefix) && isLive(entry, now)) found.push({ key, entry })
    }
    return found.sort(byKey)
  }

  /** Drops every expired entry; returns how many. */
  sweep(now = Date.now()): number {
    let dropped = 0
    for (const [key, entry] of this.entries) {
      if (!isLive(entry, now)) {
        this.entries.delete(key)
        dropped++
      }
    }
    return dropped
  }

  /** Live entries in insertion order (for snapshots). */
  *live(now = Date.now()): IterableIterator<[string, Entry]> {
    for (const [key, entry] of this.entries) if (isLive(entry, now)) yield [key, entry]
  }
}
