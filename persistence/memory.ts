// The `memory` store (TuFT's DISABLE mode): everything in this process, gone on exit. TTL expires
// lazily on access plus an unref'd periodic sweep; versions come from one store-wide counter.

import { type Static, Type } from '@sinclair/typebox'
import type { DeleteOptions, Json, PutOptions, Store, StoredDoc, StoreProvider } from '../core/persistence.js'
import { checkIfVersion, checkKey, closedError, encodeValue, expiryFor } from './common.js'
import { Table, toDoc } from './table.js'

export const MemoryConfig = Type.Object(
  {
    sweep_interval_ms: Type.Integer({
      minimum: 10,
      default: 60_000,
      description: 'How often expired keys are purged in bulk (reads never see them regardless).',
    }),
  },
  { additionalProperties: false },
)
export type MemoryConfig = Static<typeof MemoryConfig>

export class MemoryStore implements Store {
  readonly name = 'memory'
  readonly durable = false
  readonly shared = false
  private readonly table = new Table()
  private seq = 0
  private closed = false
  private readonly sweeper: NodeJS.Timeout

  constructor(cfg: Partial<MemoryConfig> = {}) {
    this.sweeper = setInterval(() => this.table.sweep(), cfg.sweep_interval_ms ?? 60_000)
    this.sweeper.unref()
  }

  async get<T extends Json = Json>(key: string): Promise<StoredDoc<T> | null> {
    this.check(key)
    const entry = this.table.get(key)
    return entry === undefined ? null : toDoc<T>(entry)
  }

  async put(key: string, value: Json, opts: PutOptions = {}): Promise<number | null> {
    this.check(key)
    checkIfVersion(this.name, opts.ifVersion)
    const expiresAt = expiryFor(this.name, opts.ttlMs)
    const text = encodeValue(this.name, value)
    if (opts.ifVersion !== undefined && (this.table.get(key)?.version ?? 0) !== opts.ifVersion) return null
    const version = ++this.seq
    this.table.set(key, { text, version, expiresAt })
    return version
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<boolean> {
    this.check(key)
    checkIfVersion(this.name, opts.ifVersion)
    const entry = this.table.get(key)
    if (entry === undefined) return false
    if (opts.ifVersion !== undefined && entry.version !== opts.ifVersion) return false
    return this.table.delete(key)
  }

  async scan<T extends Json = Json>(prefix: string): Promise<{ key: string; doc: StoredDoc<T> }[]> {
    if (this.closed) throw closedError(this.name)
    return this.table.scan(prefix).map(({ key, entry }) => ({ key, doc: toDoc<T>(entry) }))
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.sweeper)
  }

  private check(key: string): void {
    if (this.closed) throw closedError(this.name)
    checkKey(this.name, key)
  }
}

export const memoryStoreProvider: StoreProvider<typeof MemoryConfig> = {
  name: 'memory',
  aliases: ['disabled', 'disable', 'none'],
  configSchema: MemoryConfig,
  async create(cfg) {
    return new MemoryStore(cfg)
  },
}
