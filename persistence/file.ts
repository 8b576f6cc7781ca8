// The `file` store (TuFT's FILE mode): a durable single-node store in one locked directory. Writes go
// to an append-only journal, fsynced in groups before they are acknowledged; a periodic snapshot
// (atomic rename) lets the journal be truncated. Opening = snapshot + journal replay.

import { type FileHandle, mkdir, open } from 'node:fs/promises'
import { type Static, Type } from '@sinclair/typebox'
import type { Logger } from 'pino'
import { isTuftError, tuftError } from '../core/errors.js'
import type {
  DeleteOptions,
  Json,
  PutOptions,
  Store,
  StoreContext,
  StoredDoc,
  StoreHealth,
  StoreProvider,
} from '../core/persistence.js'
import { checkIfVersion, checkKey, closedError, encodeValue, expandHome, expiryFor } from './common.js'
import { type DirLock, lockDirectory } from './dir-lock.js'
import { deleteLine, putLine, syncDir, writeAll, writeSnapshot } from './file-format.js'
import { type Files, type Recovered, recover, storeFiles } from './file-recovery.js'
import { type Entry, isLive, type Table, toDoc } from './table.js'

export const FileConfig = Type.Object(
  {
    path: Type.Optional(
      Type.String({ minLength: 1, description: 'Directory of the store (created if missing).' }),
    ),
    file_path: Type.Optional(Type.String({ minLength: 1, description: "TuFT's name for `path`." })),
    compact_bytes: Type.Integer({
      minimum: 1024,
      default: 64 * 1024 * 1024,
      description: 'Journal size that triggers a snapshot and journal truncation.',
    }),
    snapshot_interval_ms: Type.Integer({
      minimum: 100,
      default: 300_000,
      description: 'Snapshot at least this often while the journal has records.',
    }),
    sweep_interval_ms: Type.Integer({ minimum: 10, default: 60_000 }),
  },
  { additionalProperties: false },
)
export type FileConfig = Static<typeof FileConfig>

const DEFAULT_PATH = '~/.cache/tuft/store'

interface Write {
  key: string
  /** null: a delete. */
  entry: Entry | null
  line: string
  resolve(): void
  reject(err: Error): void
}

export class FileStore implements Store {
  readonly name = 'file'
  readonly durable = true
  readonly shared = false
  /** Acknowledged (durable) state: what reads see. */
  private readonly committed: Table
  /** The newest not-yet-durable write per key: what compare-and-set decides on. */
  private readonly pending = new Map<string, Write>()
  private queue: Write[] = []
  private flushing: Promise<void> | null = null
  private seq: number
  private journalBytes: number
  private snapshotWanted = false
  private failure: Error | null = null
  private closed = false
  private readonly timers: NodeJS.Timeout[]

  private constructor(
    private readonly files: Files,
    private readonly journal: FileHandle,
    private readonly lock: DirLock,
    private readonly cfg: FileConfig,
    private readonly log: Logger,
    recovered: Recovered,
  ) {
    this.committed = recovered.table
    this.seq = recovered.seq
    this.journalBytes = recovered.journalBytes
    const sweep = setInterval(() => this.committed.sweep(), cfg.sweep_interval_ms)
    const snapshot = setInterval(() => {
      this.snapshotWanted = true
      this.kick()
    }, cfg.snapshot_interval_ms)
    this.timers = [sweep, snapshot]
    for (const t of this.timers) t.unref()
  }

  static async open(cfg: FileConfig, log: Logger): Promise<FileStore> {
    const dir = expandHome(cfg.path ?? cfg.file_path ?? DEFAULT_PATH)
    const files = storeFiles(dir)
    try {
      await mkdir(dir, { recursive: true })
    } catch (err) {
      throw tuftError('TUFT_PERSISTENCE', `cannot create file store directory ${dir}`, { cause: err })
    }
    const lock = await lockDirectory(dir, log).catch((err: unknown) => {
      throw wrap(err, `cannot lock file store directory ${dir}`)
    })
    try {
      const recovered = await recover(files, log)
      const journal = await open(files.journal, 'a')
      await syncDir(dir)
      return new FileStore(files, journal, lock, cfg, log, recovered)
    } catch (err) {
      await lock.release()
      throw wrap(err, `cannot open file store ${dir}`)
    }
  }

  async get<T extends Json = Json>(key: string): Promise<StoredDoc<T> | null> {
    this.check(key)
    const entry = this.committed.get(key)
    return entry === undefined ? null : toDoc<T>(entry)
  }

  async put(key: string, value: Json, opts: PutOptions = {}): Promise<number | null> {
    this.check(key)
    checkIfVersion(this.name, opts.ifVersion)
    const expiresAt = expiryFor(this.name, opts.ttlMs)
    const text = encodeValue(this.name, value)
    if (opts.ifVersion !== undefined && (this.latest(key)?.version ?? 0) !== opts.ifVersion) return null
    const entry: Entry = { text, version: ++this.seq, expiresAt }
    await this.enqueue(key, entry, putLine(key, entry))
    return entry.version
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<boolean> {
    this.check(key)
    checkIfVersion(this.name, opts.ifVersion)
    const current = this.latest(key)
    if (current === undefined) return false
    if (opts.ifVersion !== undefined && current.version !== opts.ifVersion) return false
    await this.enqueue(key, null, deleteLine(key))
    return true
  }

  async scan<T extends Json = Json>(prefix: string): Promise<{ key: string; doc: StoredDoc<T> }[]> {
    this.check(null)
    return this.committed.scan(prefix).map(({ key, entry }) => ({ key, doc: toDoc<T>(entry) }))
  }

  async health(): Promise<StoreHealth> {
    if (this.failure === null) return { ok: true }
    return { ok: false, message: 'the file store failed a write and refuses operations until a restart' }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const t of this.timers) clearInterval(t)
    while (this.flushing !== null) await this.flushing
    await this.journal.close().catch(() => undefined)
    await this.lock.release()
  }

  /** The newest live entry for key, counting writes not yet durable. */
  private latest(key: string): Entry | undefined {
    const write = this.pending.get(key)
    if (write === undefined) return this.committed.get(key)
    return write.entry !== null && isLive(write.entry, Date.now()) ? write.entry : undefined
  }

  private enqueue(key: string, entry: Entry | null, line: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const write: Write = { key, entry, line, resolve, reject }
      this.pending.set(key, write)
      this.queue.push(write)
      this.kick()
    })
  }

  private kick(): void {
    if (this.flushing !== null || this.failure !== null) return
    // Started on a microtask so that writes issued in the same tick share the first fsync.
    this.flushing = Promise.resolve()
      .then(() => this.flushLoop())
      .finally(() => {
        this.flushing = null
        // A write queued after the loop saw an empty queue but before this ran still needs a flush.
        if (this.queue.length > 0) this.kick()
      })
  }

  /** Group commit: every write queued while an fsync runs goes into the next single write + fsync. */
  private async flushLoop(): Promise<void> {
    while (this.failure === null && (this.queue.length > 0 || this.snapshotDue())) {
      const batch = this.queue
      this.queue = []
      if (batch.length > 0) {
        const text = batch.map((w) => w.line).join('')
        try {
          await writeAll(this.journal, text)
          await this.journal.datasync()
        } catch (err) {
          this.fail(err, batch)
          return
        }
        this.journalBytes += Buffer.byteLength(text)
        for (const w of batch) this.commit(w)
      }
      if (this.snapshotDue()) {
        try {
          await this.snapshot()
        } catch (err) {
          this.fail(err, [])
          return
        }
      }
    }
  }

  private commit(w: Write): void {
    if (w.entry === null) this.committed.delete(w.key)
    else this.committed.set(w.key, w.entry)
    if (this.pending.get(w.key) === w) this.pending.delete(w.key)
    w.resolve()
  }

  private snapshotDue(): boolean {
    return this.journalBytes > 0 && (this.snapshotWanted || this.journalBytes >= this.cfg.compact_bytes)
  }

  /**
   * Runs between journal batches, so the snapshot holds exactly what the journal held. A crash after the
   * rename but before the truncation is harmless: replaying that journal over the snapshot ends in the
   * same state.
   */
  private async snapshot(): Promise<void> {
    const started = Date.now()
    const entries = [...this.committed.live()]
    await writeSnapshot(this.files.snapshotTmp, this.files.snapshot, this.files.dir, this.seq, entries)
    await this.journal.truncate(0)
    await this.journal.datasync()
    this.log.debug(
      { keys: entries.length, journalBytes: this.journalBytes, ms: Date.now() - started },
      'file store snapshot',
    )
    this.journalBytes = 0
    this.snapshotWanted = false
  }

  /** A failed write or fsync leaves the journal in an unknown state: stop, and let a restart recover. */
  private fail(err: unknown, batch: Write[]): void {
    this.failure = tuftError('TUFT_PERSISTENCE', `file store ${this.files.dir} failed; restart to recover`, {
      cause: err,
    })
    this.log.error({ err }, 'file store write failed; refusing further operations')
    for (const w of [...batch, ...this.queue]) w.reject(this.failure)
    this.queue = []
    this.pending.clear()
  }

  private check(key: string | null): void {
    if (this.closed) throw closedError(this.name)
    if (this.failure !== null) throw this.failure
    if (key !== null) checkKey(this.name, key)
  }
}

function wrap(err: unknown, message: string): Error {
  if (isTuftError(err)) return err
  return tuftError('TUFT_PERSISTENCE', `${message}: ${(err as Error).message}`, { cause: err })
}

export const fileStoreProvider: StoreProvider<typeof FileConfig> = {
  name: 'file',
  aliases: ['file_redis', 'FILE'],
  configSchema: FileConfig,
  create(cfg: FileConfig, ctx: StoreContext) {
    return FileStore.open(cfg, ctx.log)
  },
}
