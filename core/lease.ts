// A lease on top of any Store (compare-and-set + TTL): one holder at a time per key, renewed by an
// unref'd timer, released conditionally, and taken over by another process once it expired. Used so
// that one training run is served by one server process when several share a Redis.

import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import { tuftError } from './errors.js'
import type { Store } from './persistence.js'

export interface LeaseOptions {
  /** Who holds it, for people and error messages (e.g. `host:pid`). */
  owner: string
  /** The lease lapses this long after its last renewal. */
  ttlMs: number
  /** Renewal period; default ttlMs / 3. */
  renewEveryMs?: number
  /** Called once when the lease is lost: taken over, removed, or not renewable before it lapsed. */
  onLost?: (reason: string) => void
  log?: Logger
}

export interface LeaseDoc {
  [field: string]: string | number
  owner: string
  /** Distinguishes two leases of one owner (e.g. after a restart with the same name). */
  token: string
  acquiredAt: number
}

/** Takes the lease if nobody holds it (or the holder let it lapse); null when someone else holds it. */
export async function acquireLease(store: Store, key: string, opts: LeaseOptions): Promise<Lease | null> {
  const renewEveryMs = opts.renewEveryMs ?? Math.floor(opts.ttlMs / 3)
  if (!(opts.ttlMs > 0 && renewEveryMs > 0 && renewEveryMs < opts.ttlMs)) {
    throw tuftError(
      'TUFT_INTERNAL',
      `lease ${key}: need 0 < renewEveryMs (${renewEveryMs}) < ttlMs (${opts.ttlMs})`,
    )
  }
  const doc: LeaseDoc = { owner: opts.owner, token: randomBytes(8).toString('hex'), acquiredAt: Date.now() }
  const sentAt = Date.now()
  const version = await store.put(key, doc, { ifVersion: 0, ttlMs: opts.ttlMs })
  return version === null ? null : new Lease(store, key, doc, version, sentAt, renewEveryMs, opts)
}

/** The owner currently holding the lease at key, or null. */
export async function leaseHolder(store: Store, key: string): Promise<string | null> {
  return (await store.get<LeaseDoc>(key))?.value.owner ?? null
}

export class Lease {
  /** Fencing token: larger for every later holder of this key (store versions are never reused). */
  readonly fence: number
  private state: 'held' | 'lost' | 'released' = 'held'
  private renewing: Promise<boolean> | null = null
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly store: Store,
    readonly key: string,
    private readonly doc: LeaseDoc,
    private version: number,
    /** When the last successful write was sent: the store's TTL started no earlier than this. */
    private renewedAt: number,
    renewEveryMs: number,
    private readonly opts: LeaseOptions,
  ) {
    this.fence = version
    this.timer = setInterval(() => void this.renew(), renewEveryMs)
    this.timer.unref()
  }

  get owner(): string {
    return this.doc.owner
  }

  /** True while held and renewed recently enough that it cannot have lapsed. */
  get held(): boolean {
    return this.state === 'held' && Date.now() - this.renewedAt < this.opts.ttlMs
  }

  /** Extends the lease by ttlMs; false when it is no longer ours. The timer calls this on its own. */
  renew(): Promise<boolean> {
    if (this.state !== 'held') return Promise.resolve(false)
    this.renewing ??= this.extend().finally(() => {
      this.renewing = null
    })
    return this.renewing
  }

  /** Stops renewing and removes the lease if it is still ours (never someone else's). */
  async release(): Promise<void> {
    clearInterval(this.timer)
    await this.renewing
    if (this.state !== 'held') return
    this.state = 'released'
    await this.store.delete(this.key, { ifVersion: this.version })
  }

  private async extend(): Promise<boolean> {
    const sentAt = Date.now()
    try {
      const version = await this.store.put(this.key, this.doc, {
        ifVersion: this.version,
        ttlMs: this.opts.ttlMs,
      })
      if (this.state !== 'held') return false
      if (version === null) {
        this.lose('it was taken over or removed')
        return false
      }
      this.version = version
      this.renewedAt = sentAt
      return true
    } catch (err) {
      // The store may come back in time; give up only once the lease may have lapsed.
      if (this.state === 'held' && Date.now() - this.renewedAt >= this.opts.ttlMs) {
        this.lose(`it could not be renewed within ${this.opts.ttlMs} ms: ${(err as Error).message}`)
      } else {
        this.opts.log?.warn({ err, key: this.key }, 'lease renewal failed; retrying')
      }
      return false
    }
  }

  private lose(reason: string): void {
    this.state = 'lost'
    clearInterval(this.timer)
    this.opts.log?.warn({ key: this.key, owner: this.doc.owner }, `lease lost: ${reason}`)
    this.opts.onLost?.(reason)
  }
}
