// The persistence contract (ARCHITECTURE §6): a namespaced key-value store of JSON documents with
// compare-and-set, prefix scan and TTL. Providers live in persistence/ and are chosen by config.

import type { Static, TSchema } from '@sinclair/typebox'
import type { Logger } from 'pino'
import type { EventBus } from './events.js'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

export interface StoredDoc<T extends Json = Json> {
  value: T
  /**
   * Monotonic per key; changes on every write and is never reused, even after a delete or expiry, so a
   * stale ifVersion cannot match a re-created key. Used for compare-and-set and as a fencing token.
   */
  version: number
}

export interface PutOptions {
  /** Expire the key after this many milliseconds (absent: never). */
  ttlMs?: number
  /**
   * Compare-and-set: write only when the stored version equals this (0 = key must not exist).
   * A mismatch resolves to null and writes nothing.
   */
  ifVersion?: number
}

export interface DeleteOptions {
  /** Delete only when the stored version equals this; a mismatch resolves to false. */
  ifVersion?: number
}

export interface Store {
  readonly name: string
  /** Data survives a restart of this process (absent: false). Training state is made durable only then. */
  readonly durable?: boolean
  /** Other processes may use the same data at once (absent: false): runs then need leases. */
  readonly shared?: boolean
  get<T extends Json = Json>(key: string): Promise<StoredDoc<T> | null>
  /** Resolves to the new version, or null when an ifVersion condition failed. Durable on resolve. */
  put(key: string, value: Json, opts?: PutOptions): Promise<number | null>
  /** True when the key existed (and matched ifVersion when given) and is now gone. Durable on resolve. */
  delete(key: string, opts?: DeleteOptions): Promise<boolean>
  /** Every live key starting with prefix, with its document, in key order. */
  scan<T extends Json = Json>(prefix: string): Promise<{ key: string; doc: StoredDoc<T> }[]>
  /**
   * Whether the store answers now, within a short bound (absent: always). The message is shown to
   * anyone (healthz is public): it never names a host, URL or path.
   */
  health?(): Promise<StoreHealth>
  close(): Promise<void>
}

export interface StoreHealth {
  ok: boolean
  message?: string
}

export interface StoreContext {
  log: Logger
  /** When present, every store operation reports its latency as a 'store.op' event. */
  events?: EventBus
}

export interface StoreProvider<S extends TSchema = TSchema> {
  name: string
  /** TuFT mode names accepted for this provider. */
  aliases: readonly string[]
  configSchema: S
  /** Fails (never falls back) when the configured store cannot be reached. */
  create(cfg: Static<S>, ctx: StoreContext): Promise<Store>
}
