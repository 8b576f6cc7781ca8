// Wraps a Store so that every operation reports its latency as a 'store.op' event, keeping telemetry
// out of the providers themselves.

import type { EventBus } from '../core/events.js'
import type { DeleteOptions, Json, PutOptions, Store, StoredDoc, StoreHealth } from '../core/persistence.js'

type Op = 'get' | 'put' | 'delete' | 'scan'

export class ObservedStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly events: EventBus,
  ) {}

  get name(): string {
    return this.inner.name
  }

  get durable(): boolean {
    return this.inner.durable ?? false
  }

  get shared(): boolean {
    return this.inner.shared ?? false
  }

  get<T extends Json = Json>(key: string): Promise<StoredDoc<T> | null> {
    return this.timed('get', () => this.inner.get<T>(key))
  }

  put(key: string, value: Json, opts?: PutOptions): Promise<number | null> {
    return this.timed('put', () => this.inner.put(key, value, opts))
  }

  delete(key: string, opts?: DeleteOptions): Promise<boolean> {
    return this.timed('delete', () => this.inner.delete(key, opts))
  }

  scan<T extends Json = Json>(prefix: string): Promise<{ key: string; doc: StoredDoc<T> }[]> {
    return this.timed('scan', () => this.inner.scan<T>(prefix))
  }

  health(): Promise<StoreHealth> {
    return this.inner.health?.() ?? Promise.resolve({ ok: true })
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  /** Failed operations are timed too: a slow failure is as interesting as a slow success. */
  private async timed<R>(op: Op, run: () => Promise<R>): Promise<R> {
    const started = performance.now()
    try {
      return await run()
    } finally {
      this.events.emit('store.op', { store: this.inner.name, op, ms: performance.now() - started })
    }
  }
}
