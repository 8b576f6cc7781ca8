// Several server processes on one shared store (Redis): each training run is served by one process at a
// time, the holder of the run's lease (core/lease.ts), whose lease record names its base URL so
// that the others forward the run's training requests to it. Each process also keeps a boot lease, so
// that any process can tell a future pending in a live peer from one lost with a dead process.

import type { Logger } from 'pino'
import { acquireLease, type Lease, type LeaseDoc } from '../lease.js'
import type { Store } from '../persistence.js'

export interface OwnershipOptions {
  store: Store
  bootId: string
  /** This process's base URL as peers reach it (null until it listens). */
  selfUrl: () => string | null
  /** A lease lapses this long after its holder stopped renewing it. */
  ttlMs: number
  log: Logger
}

const runLeaseKey = (runId: string) => `lease/run/${runId}`
const bootKey = (bootId: string) => `lease/boot/${bootId}`

/** The lease owner field: `<bootId>@<base URL>`. */
function ownerField(bootId: string, url: string): string {
  return `${bootId}@${url}`
}

function parseOwner(owner: string): { bootId: string; url: string } {
  const at = owner.indexOf('@')
  return { bootId: owner.slice(0, at), url: owner.slice(at + 1) }
}

export class Ownership {
  private readonly held = new Map<string, Lease>()
  private boot: Lease | null = null

  constructor(private readonly opts: OwnershipOptions) {}

  /** Leases are needed only when other processes share the store. */
  get needed(): boolean {
    return this.opts.store.shared === true
  }

  get ttlMs(): number {
    return this.opts.ttlMs
  }

  /** Announces this process as alive (its pending futures are then watched, not reported lost). */
  async start(): Promise<void> {
    if (!this.needed || this.boot) return
    this.boot = await acquireLease(this.opts.store, bootKey(this.opts.bootId), {
      owner: ownerField(this.opts.bootId, this.opts.selfUrl() ?? ''),
      ttlMs: this.opts.ttlMs,
      log: this.opts.log,
      onLost: (reason) =>
        this.opts.log.error({ reason }, 'boot lease lost: peers may report our futures as lost'),
    })
  }

  /** True when the process that minted futures under bootId still runs. */
  async isBootAlive(bootId: string): Promise<boolean> {
    if (bootId === this.opts.bootId) return true
    if (!this.needed) return false
    return (await this.opts.store.get(bootKey(bootId))) !== null
  }

  /** True while this process holds the run (always, without a shared store). */
  holds(runId: string): boolean {
    return !this.needed || this.held.get(runId)?.held === true
  }

  /**
   * Takes the run's lease for this process (null), or answers the base URL of the live holder. A lease
   * left by an earlier boot at this very URL is taken over at once: nobody else can be listening there.
   * `onLost` runs if the lease is later taken over or cannot be renewed.
   */
  async tryClaim(runId: string, onLost: () => void): Promise<string | null> {
    if (!this.needed) return null
    const self = this.opts.selfUrl() ?? ''
    for (let attempt = 0; attempt < 3; attempt++) {
      const lease = await acquireLease(this.opts.store, runLeaseKey(runId), {
        owner: ownerField(this.opts.bootId, self),
        ttlMs: this.opts.ttlMs,
        log: this.opts.log,
        onLost: (reason) => {
          this.held.delete(runId)
          this.opts.log.warn({ run: runId, reason }, 'training run lease lost')
          onLost()
        },
      })
      if (lease) {
        this.held.set(runId, lease)
        return null
      }
      const doc = await this.opts.store.get<LeaseDoc>(runLeaseKey(runId))
      if (!doc) continue
      const holder = parseOwner(doc.value.owner)
      if (holder.bootId === this.opts.bootId) return null
      if (holder.url === self && self !== '') {
        this.opts.log.info(
          { run: runId, stale: holder.bootId },
          'taking over a run leased by an earlier boot here',
        )
        await this.opts.store.delete(runLeaseKey(runId), { ifVersion: doc.version })
        continue
      }
      return holder.url
    }
    return 'an unknown peer'
  }

  /** The base URL of the run's current holder, or null when nobody holds it. */
  async holderUrl(runId: string): Promise<string | null> {
    const doc = await this.opts.store.get<LeaseDoc>(runLeaseKey(runId))
    return doc ? parseOwner(doc.value.owner).url : null
  }

  /** Gives the run up (unload, shutdown) so that a peer can take it at once. */
  async release(runId: string): Promise<void> {
    const lease = this.held.get(runId)
    this.held.delete(runId)
    await lease?.release()
  }

  async releaseAll(): Promise<void> {
    for (const runId of [...this.held.keys()]) await this.release(runId)
    await this.boot?.release()
    this.boot = null
  }
}
