// Checkpoints on disk and in the Store (spec §3.14-3.17, §3.23, §7.3): written atomically under
// checkpoint_dir/<user>/<run>/{weights,sampler_weights}/<name>/ (temp dir + rename), listed, published,
// given TTLs, garbage-collected when expired, and exported as .tar.gz archives behind signed URLs. The
// temp dirs a crash left in a run's directory are swept at boot.

import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import { create as createTar } from 'tar'
import { type CheckpointRecord, canReadCheckpoint, isCheckpointExpired } from '../domain/checkpoint.js'
import { keys } from '../domain/keys.js'
import type { TrainingRunRecord } from '../domain/training-run.js'
import type { Manifest } from '../engine.js'
import { tuftError } from '../errors.js'
import type { EventBus } from '../events.js'
import type { Store } from '../persistence.js'
import { LinkSigner } from '../signed-links.js'
import {
  type CheckpointKind,
  type CheckpointRef,
  formatCheckpointId,
  formatTinkerPath,
  parseTinkerPath,
} from '../wire/paths.js'
import { MAX_TTL_SECONDS } from '../wire/schemas.js'
import { STATE_DIR } from './durable-state.js'
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, stageTiedArchive } from './tied-archive.js'

export interface CheckpointServiceOptions {
  store: Store
  /** Absolute checkpoint_dir. */
  root: string
  log: Logger
  events: EventBus
}

/**
 * What a save cut short by a crash leaves in a run's directory (and in its durable state directory):
 * the temp dir being filled, or the replaced copy of an overwritten checkpoint.
 */
const LEFTOVER = /^\.(tmp|old)-/

/** Files an archive must hold at its root (spec §3.23.7). */
const PEFT_FILES = [ADAPTER_WEIGHTS, ADAPTER_CONFIG]

export class CheckpointService {
  /** Signs archive URLs; per process, so links die with it (they are valid for minutes anyway). */
  private readonly links = new LinkSigner()
  private gcTimer: NodeJS.Timeout | null = null

  constructor(private readonly opts: CheckpointServiceOptions) {}

  absDir(c: Pick<CheckpointRecord, 'dir'>): string {
    return join(this.opts.root, c.dir)
  }

  /**
   * Writes a checkpoint through `write(tempDir)` and moves it into place. An existing name fails with
   * a user error unless overwrite (spec §3.14: never 409).
   */
  async save(
    run: TrainingRunRecord,
    kind: CheckpointKind,
    name: string,
    opts: { ttlSeconds: number | null; overwrite: boolean; hasOptimizer: boolean },
    write: (dir: string) => Promise<Manifest>,
  ): Promise<CheckpointRecord> {
    const key = keys.checkpoint(run.id, formatCheckpointId(kind, name))
    const existing = await this.opts.store.get<CheckpointRecord>(key)
    if (existing && !isCheckpointExpired(existing.value, Date.now()) && !opts.overwrite) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `Checkpoint ${formatTinkerPath({ runId: run.id, kind, name })} already exists; pass overwrite=true to replace it`,
      )
    }
    const runDir = join(encodeURIComponent(run.owner), run.id)
    const dir = join(runDir, kind, name)
    const tmp = join(this.opts.root, runDir, `.tmp-${randomUUID()}`)
    const final = join(this.opts.root, dir)
    await mkdir(tmp, { recursive: true })
    let manifest: Manifest
    try {
      manifest = await write(tmp)
      await mkdir(join(this.opts.root, runDir, kind), { recursive: true })
      if (existsSync(final)) {
        const old = join(this.opts.root, runDir, `.old-${randomUUID()}`)
        await rename(final, old)
        await rename(tmp, final)
        await rm(old, { recursive: true, force: true })
      } else {
        await rename(tmp, final)
      }
    } catch (err) {
      await rm(tmp, { recursive: true, force: true })
      throw err
    }
    const now = Date.now()
    const record: CheckpointRecord = {
      runId: run.id,
      owner: run.owner,
      kind,
      name,
      baseModel: run.baseModel,
      lora: run.lora,
      hasOptimizer: opts.hasOptimizer,
      dir,
      createdAt: now,
      sizeBytes: manifest.files.reduce((n, f) => n + f.bytes, 0),
      public: false,
      expiresAt: opts.ttlSeconds === null ? null : now + opts.ttlSeconds * 1000,
    }
    await this.opts.store.put(key, record)
    this.opts.events.emit('usage', {
      userId: run.owner,
      sessionId: run.sessionId,
      modelName: run.baseModel,
      kind: 'checkpoint_bytes',
      amount: record.sizeBytes - (existing?.value.sizeBytes ?? 0),
    })
    return record
  }

  /** A private directory for an ephemeral sampler adapter (not a listed checkpoint). */
  async ephemeralDir(id: string): Promise<string> {
    const dir = join(this.opts.root, '.ephemeral', encodeURIComponent(id))
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    return dir
  }

  /** A live checkpoint of a run by id (`weights/x`, `sampler_weights/x`, or bare `x`: weights first). */
  async find(runId: string, ref: CheckpointRef): Promise<CheckpointRecord | null> {
    const kinds: CheckpointKind[] = ref.kind ? [ref.kind] : ['weights', 'sampler_weights']
    for (const kind of kinds) {
      const doc = await this.opts.store.get<CheckpointRecord>(
        keys.checkpoint(runId, formatCheckpointId(kind, ref.name)),
      )
      if (doc && !isCheckpointExpired(doc.value, Date.now())) return doc.value
    }
    return null
  }

  /** A checkpoint the caller may read (owner, or published); otherwise 404 without saying which. */
  async readable(userId: string, runId: string, ref: CheckpointRef): Promise<CheckpointRecord> {
    const c = await this.find(runId, ref)
    if (!c || !canReadCheckpoint(c, userId)) {
      throw tuftError(
        'TUFT_NOT_FOUND',
        `Unknown checkpoint '${ref.kind ? `${ref.kind}/` : ''}${ref.name}' of training run '${runId}'`,
      )
    }
    return c
  }

  /** Resolves a tinker:// path for reading (weights_info, load_weights, sampling sessions, archives). */
  async readablePath(userId: string, path: string): Promise<CheckpointRecord> {
    const p = parseTinkerPath(path)
    const c = await this.find(p.runId, p)
    if (!c || !canReadCheckpoint(c, userId))
      throw tuftError('TUFT_NOT_FOUND', `Checkpoint '${path}' not found`)
    return c
  }

  /** A checkpoint the caller owns (publish, TTL, delete). */
  async owned(userId: string, runId: string, ref: CheckpointRef): Promise<CheckpointRecord> {
    const c = await this.find(runId, ref)
    if (!c || c.owner !== userId) {
      throw tuftError(
        'TUFT_NOT_FOUND',
        `Unknown checkpoint '${ref.kind ? `${ref.kind}/` : ''}${ref.name}' of training run '${runId}'`,
      )
    }
    return c
  }

  async listRun(runId: string): Promise<CheckpointRecord[]> {
    const now = Date.now()
    const all = await this.opts.store.scan<CheckpointRecord>(keys.runCheckpoints(runId))
    return all
      .map((e) => e.doc.value)
      .filter((c) => !isCheckpointExpired(c, now))
      .sort((a, b) => b.createdAt - a.createdAt)
  }

  /** Every live checkpoint the user owns, newest first. */
  async listOwned(userId: string): Promise<CheckpointRecord[]> {
    const now = Date.now()
    const all = await this.opts.store.scan<CheckpointRecord>(keys.checkpoints())
    return all
      .map((e) => e.doc.value)
      .filter((c) => c.owner === userId && !isCheckpointExpired(c, now))
      .sort((a, b) => b.createdAt - a.createdAt)
  }

  /** Published checkpoints of other users (access_scope=accessible). */
  async listPublic(): Promise<CheckpointRecord[]> {
    const now = Date.now()
    const all = await this.opts.store.scan<CheckpointRecord>(keys.checkpoints())
    return all.map((e) => e.doc.value).filter((c) => c.public && !isCheckpointExpired(c, now))
  }

  async setPublic(c: CheckpointRecord, isPublic: boolean): Promise<void> {
    await this.update(c, { public: isPublic })
  }

  /** ttlSeconds null clears the expiry; otherwise it counts from now. */
  async setTtl(c: CheckpointRecord, ttlSeconds: number | null): Promise<void> {
    if (
      ttlSeconds !== null &&
      !(Number.isInteger(ttlSeconds) && ttlSeconds > 0 && ttlSeconds <= MAX_TTL_SECONDS)
    ) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `ttl_seconds must be a positive integer up to ${MAX_TTL_SECONDS} or null, got ${ttlSeconds}`,
      )
    }
    await this.update(c, { expiresAt: ttlSeconds === null ? null : Date.now() + ttlSeconds * 1000 })
  }

  async delete(c: CheckpointRecord): Promise<void> {
    await this.opts.store.delete(keys.checkpoint(c.runId, formatCheckpointId(c.kind, c.name)))
    await rm(this.absDir(c), { recursive: true, force: true })
    this.opts.events.emit('usage', {
      userId: c.owner,
      modelName: c.baseModel,
      kind: 'checkpoint_bytes',
      amount: -c.sizeBytes,
    })
  }

  /** Deletes expired checkpoints (records and files). */
  async gc(now = Date.now()): Promise<number> {
    let removed = 0
    for (const { doc } of await this.opts.store.scan<CheckpointRecord>(keys.checkpoints())) {
      if (isCheckpointExpired(doc.value, now)) {
        await this.delete(doc.value)
        removed++
      }
    }
    return removed
  }

  /**
   * Removes what saves cut short by a crash left under every run's directory, if last modified before
   * `before` (a save of this process, or of another server sharing checkpoint_dir, may be filling a
   * newer one); returns their paths relative to checkpoint_dir. User directories are URI-encoded ids,
   * never dot entries.
   */
  async sweepLeftovers(before: number): Promise<string[]> {
    const removed: string[] = []
    const list = (rel: string) => readdir(join(this.opts.root, rel)).catch(() => [] as string[])
    for (const user of await list('')) {
      if (user.startsWith('.')) continue
      for (const run of await list(user)) {
        for (const parent of [join(user, run), join(user, run, STATE_DIR)]) {
          for (const name of (await list(parent)).filter((n) => LEFTOVER.test(n))) {
            const rel = join(parent, name)
            const info = await stat(join(this.opts.root, rel)).catch(() => null)
            if (info === null || info.mtimeMs >= before) continue
            await rm(join(this.opts.root, rel), { recursive: true, force: true })
            removed.push(rel)
          }
        }
      }
    }
    return removed
  }

  startGc(intervalMs: number): void {
    this.gcTimer = setInterval(() => {
      this.gc().catch((err) => this.opts.log.error({ err }, 'checkpoint garbage collection failed'))
    }, intervalMs)
    this.gcTimer.unref()
  }

  close(): void {
    if (this.gcTimer) clearInterval(this.gcTimer)
    this.gcTimer = null
  }

  /** A self-authorising token for downloading `c` as the reader `userId`, valid until `expiresAt`. */
  signArchive(userId: string, c: CheckpointRecord, expiresAt: number): string {
    return this.links.sign([userId, c.runId, formatCheckpointId(c.kind, c.name)], expiresAt)
  }

  /** The checkpoint a token grants, re-checking that the reader may still read it. */
  async verifyArchive(token: string): Promise<CheckpointRecord> {
    const invalid = () => tuftError('TUFT_NOT_FOUND', 'Unknown or expired archive link')
    const fields = this.links.open(token)
    if (!fields) throw invalid()
    const [userId, runId, id] = fields as [string, string, string]
    const [kind, ...rest] = id.split('/')
    const c = await this.find(runId, { kind: kind as CheckpointKind, name: rest.join('/') })
    if (!c || !canReadCheckpoint(c, userId)) throw invalid()
    return c
  }

  /**
   * A gzip'd tar of the checkpoint's files, all at the archive root; for a model with tied embeddings,
   * laid out by stageTiedArchive in a temp dir beside the run's checkpoints, removed once it is sent.
   */
  async archive(c: CheckpointRecord, opts: { tiedEmbeddings: boolean }): Promise<Readable> {
    const dir = this.absDir(c)
    const files: string[] = []
    for (const entry of await readdir(dir, { withFileTypes: true }))
      if (entry.isFile()) files.push(entry.name)
    for (const required of PEFT_FILES) {
      if (!files.includes(required)) {
        throw tuftError(
          'TUFT_UNPROCESSABLE',
          `Checkpoint ${formatTinkerPath(c)} has no ${required} to export`,
        )
      }
    }
    files.sort()
    if (opts.tiedEmbeddings) {
      // A .tmp- name: the boot's sweep of leftovers removes it if the process dies while sending.
      const staging = join(
        this.opts.root,
        encodeURIComponent(c.owner),
        c.runId,
        `.tmp-archive-${randomUUID()}`,
      )
      const removeStaging = () => rm(staging, { recursive: true, force: true })
      const packed = await stageTiedArchive(dir, files, staging).catch(async (err: unknown) => {
        await removeStaging()
        throw err
      })
      if (packed) {
        // Through a Node stream, so that the staging dir goes however the answer ends: sent, failed or
        // cut off by the client (the tar stream itself reports no 'close' when destroyed).
        const out = new PassThrough()
        pipeline(createTar({ gzip: true, cwd: staging, portable: true }, packed), out)
          .catch(() => {})
          .then(removeStaging)
          .catch((err) => this.opts.log.warn({ err }, 'could not remove an archive staging dir'))
        return out
      }
    }
    return createTar({ gzip: true, cwd: dir, portable: true }, files) as unknown as Readable
  }

  private async update(c: CheckpointRecord, patch: Partial<CheckpointRecord>): Promise<void> {
    Object.assign(c, patch)
    await this.opts.store.put(keys.checkpoint(c.runId, formatCheckpointId(c.kind, c.name)), c)
  }
}
