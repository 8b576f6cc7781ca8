// The sampler store (spec §3.16, §3.18, §3.20): sampler records and the adapters they serve — base
// model, a checkpoint's files, or an in-memory snapshot of a training run with its durable copy — with
// their lifecycle: creation, the newest few snapshots kept per run, release when a session expires,
// revocation of samplers on another user's checkpoint once it is no longer published, and the sweep of
// files no record names. Sample requests themselves are admitted by SamplingService.

import type { Logger } from 'pino'
import { type CheckpointRecord, canReadCheckpoint } from '../domain/checkpoint.js'
import { keys } from '../domain/keys.js'
import type { SamplerRecord, SamplerSource } from '../domain/sampler.js'
import type { TrainingRunRecord } from '../domain/training-run.js'
import { tuftError } from '../errors.js'
import { samplerId } from '../ids.js'
import type { Store } from '../persistence.js'
import { type CheckpointKind, formatCheckpointId } from '../wire/paths.js'
import type { CreateSamplingSessionRequest } from '../wire/schemas.js'
import { AdapterCache, type LocalAdapter, type PinnedAdapter } from './adapter-cache.js'
import type { CheckpointService } from './checkpoints.js'
import type { ModelHost, ModelHosts } from './models.js'
import { SAMPLERS_DIR, type SamplerFiles } from './sampler-files.js'
import type { SessionService } from './sessions.js'

export interface SamplerStoreOptions {
  store: Store
  sessions: SessionService
  models: ModelHosts
  checkpoints: CheckpointService
  /** Sampler-owned adapter files under checkpoint_dir. */
  files: SamplerFiles
  log: Logger
}

/** An RL loop snapshots every step; older snapshots of a run than these are freed. */
export const SNAPSHOTS_KEPT_PER_RUN = 4

/**
 * A snapshot's PEFT export that has not landed this long after the sampler was created was lost (its
 * process died): until then another process answers 503 (retry) instead of 404.
 */
const SNAPSHOT_WRITE_GRACE_MS = 60_000

/** The engine id of a checkpoint's adapter. */
function checkpointAdapterId(runId: string, checkpointId: string): string {
  return `${runId}/${checkpointId}`
}

/** An ephemeral sampler's adapter in this process. */
interface Snapshot {
  ref: LocalAdapter
  /** Settles once its durable copy is written (or failed); the engine must keep the snapshot until then. */
  written: Promise<void>
  /** Its durable copy, once written. */
  dir?: string
}

export class SamplerStore {
  /** Samplers whose adapter lives in this process (snapshots). */
  private readonly refs = new Map<string, Snapshot>()
  /** Snapshot exports and file releases under way (shutdown waits for them). */
  private readonly background = new Set<Promise<void>>()
  /** Each run's ephemeral samplers, oldest first; only the newest few keep their snapshot. */
  private readonly snapshotsByRun = new Map<string, string[]>()
  private readonly caches = new Map<string, AdapterCache>()
  private snapshotCount = 0

  constructor(private readonly opts: SamplerStoreOptions) {
    opts.sessions.onExpire((sessionId) => this.track(this.releaseSession(sessionId)))
  }

  /** Resolves once every export and file release under way is done (the engines close after this). */
  async close(): Promise<void> {
    await Promise.all(this.background)
  }

  /**
   * Removes sampler files no record names any more (a crash between writing them and recording them)
   * last modified before `before`; returns their paths.
   */
  async sweepOrphanFiles(before: number): Promise<string[]> {
    const referenced = new Set<string>()
    for (const { doc } of await this.opts.store.scan<SamplerRecord>(keys.samplers())) {
      const source = doc.value.source
      if (source.kind !== 'base' && source.dir !== undefined) referenced.add(source.dir)
    }
    const removed = await this.opts.files.sweep(referenced, before)
    if (removed.length > 0) this.opts.log.info({ removed }, 'removed sampler files no sampler records')
    return removed
  }

  async createSession(userId: string, body: CreateSamplingSessionRequest): Promise<string> {
    const session = await this.opts.sessions.getLive(userId, body.session_id)
    const id = samplerId(session.id, body.sampling_session_seq_id)
    const existing = await this.opts.store.get<SamplerRecord>(keys.sampler(id))
    if (existing) return existing.value.id
    let source: SamplerSource = { kind: 'base' }
    let baseModel: string
    if (body.model_path) {
      const c = await this.opts.checkpoints.readablePath(userId, body.model_path)
      // The sampler's own links to the files: deleting or expiring the checkpoint later leaves it working.
      const dir = await this.opts.files
        .linkFrom(id, this.opts.checkpoints.absDir(c))
        .catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err
          throw tuftError('TUFT_NOT_FOUND', `Checkpoint '${body.model_path}' not found`, { cause: err })
        })
      source = {
        kind: 'checkpoint',
        runId: c.runId,
        checkpointId: formatCheckpointId(c.kind, c.name),
        dir,
        ...(c.owner === userId ? {} : { publishedBy: c.owner }),
      }
      baseModel = c.baseModel
    } else if (body.base_model) {
      baseModel = body.base_model
    } else {
      throw tuftError('TUFT_BAD_REQUEST', 'create_sampling_session needs model_path or base_model')
    }
    const host = this.opts.models.get(baseModel)
    if (!host.supports('sampling'))
      throw tuftError('TUFT_BAD_REQUEST', `Model '${host.name}' is configured for training only`)
    const record: SamplerRecord = {
      id,
      owner: userId,
      sessionId: session.id,
      seqId: body.sampling_session_seq_id,
      baseModel: host.name,
      modelPath: body.model_path ?? null,
      source,
      createdAt: Date.now(),
    }
    if ((await this.opts.store.put(keys.sampler(id), record, { ifVersion: 0 })) === null) {
      // A concurrent retry of the same request created it first: its files are the ones kept.
      if (source.kind === 'checkpoint') await this.opts.files.remove(source.dir)
    }
    return id
  }

  /**
   * The ephemeral sampler of save_weights_for_sampler: `snapshot` captures the adapter under an engine id;
   * with a durable store, `exportSnapshot` then writes that snapshot as PEFT in the background.
   */
  async createFromTraining(
    run: TrainingRunRecord,
    seqId: number,
    snapshot: (snapshotId: string) => Promise<LocalAdapter>,
    exportSnapshot: (snapshotId: string, dir: string) => Promise<unknown>,
  ): Promise<string> {
    const id = samplerId(run.sessionId, seqId)
    const existing = await this.opts.store.get<SamplerRecord>(keys.sampler(id))
    if (existing && existing.value.owner !== run.owner)
      throw tuftError('TUFT_NOT_FOUND', `Unknown session '${run.sessionId}'`)
    const host = this.opts.models.get(run.baseModel)
    const old = this.refs.get(id)
    // A fresh engine id per snapshot, so freeing a replaced one can never touch its successor.
    const ref = await snapshot(`${id}@${++this.snapshotCount}`)
    const durable = this.opts.store.durable === true
    const record: SamplerRecord = {
      id,
      owner: run.owner,
      sessionId: run.sessionId,
      seqId,
      baseModel: run.baseModel,
      modelPath: null,
      source: { kind: 'snapshot', runId: run.id, ...(durable ? { writing: true } : {}) },
      createdAt: Date.now(),
    }
    const version = await this.opts.store.put(keys.sampler(id), record)
    const snap: Snapshot = { ref, written: Promise.resolve() }
    if (durable) {
      // Off the path of the first sample, which uses the in-memory snapshot.
      snap.written = this.persist(record, version!, snap, exportSnapshot)
      this.track(snap.written)
    }
    if (old) this.track(this.release(host, old, null))
    this.refs.set(id, snap)
    const recent = (this.snapshotsByRun.get(run.id) ?? []).filter((s) => s !== id)
    recent.push(id)
    while (recent.length > SNAPSHOTS_KEPT_PER_RUN) {
      const oldest = recent.shift()!
      const retired = this.refs.get(oldest)
      this.refs.delete(oldest)
      // Its durable copy goes too: only the newest snapshots of a run are kept, on disk as in memory.
      if (retired) this.track(this.release(host, retired, oldest))
    }
    this.snapshotsByRun.set(run.id, recent)
    return id
  }

  /** Writes a snapshot's PEFT copy to a sampler-owned directory and records it in the sampler. */
  private async persist(
    record: SamplerRecord,
    version: number,
    snap: Snapshot,
    exportSnapshot: (snapshotId: string, dir: string) => Promise<unknown>,
  ): Promise<void> {
    const ref = snap.ref
    try {
      snap.dir =
        ref.kind === 'peft'
          ? await this.opts.files.linkFrom(record.id, ref.dir)
          : await this.opts.files.write(record.id, (tmp) => exportSnapshot(ref.id, tmp))
    } catch (err) {
      this.opts.log.warn(
        { err, sampler: record.id },
        'could not write a sampler snapshot to disk: it will not outlive this process',
      )
    }
    const runId = (record.source as { runId: string }).runId
    record.source = { kind: 'snapshot', runId, ...(snap.dir ? { dir: snap.dir } : {}) }
    // Compare-and-set: a newer snapshot under the same sampler id may have replaced this record.
    const written = await this.opts.store
      .put(keys.sampler(record.id), record, { ifVersion: version })
      .catch((err: unknown) => {
        this.opts.log.warn({ err, sampler: record.id }, 'could not record a sampler snapshot')
        return null
      })
    if (written === null && snap.dir) {
      await this.opts.files.remove(snap.dir)
      delete snap.dir
    }
  }

  /**
   * Frees a snapshot in the engine once its export is done; `forget` (a sampler id) also removes the
   * sampler's durable copy, after which it answers 404 everywhere.
   */
  private async release(host: ModelHost, snap: Snapshot, forget: string | null): Promise<void> {
    await snap.written
    this.cache(host).retire(snap.ref)
    // A PEFT snapshot (training and sampling on different providers) is a private directory.
    if (snap.ref.kind === 'peft') await this.opts.files.remove(snap.ref.dir)
    if (snap.dir) await this.opts.files.remove(snap.dir)
    if (forget) await this.dropFiles(forget, false)
  }

  /** Removes a sampler's own files and records that they are gone (`close`: its session expired). */
  private async dropFiles(id: string, close: boolean): Promise<void> {
    const doc = await this.opts.store.get<SamplerRecord>(keys.sampler(id))
    if (!doc) return
    const s = doc.value
    const dir = s.source.kind === 'base' ? undefined : s.source.dir
    // Records written before samplers owned their files point into the checkpoint itself: never removed.
    if (dir?.startsWith(SAMPLERS_DIR)) await this.opts.files.remove(dir)
    if (s.source.kind === 'snapshot') s.source = { kind: 'snapshot', runId: s.source.runId }
    if (close) s.closed = true
    await this.opts.store.put(keys.sampler(id), s)
  }

  /** A session expired: its samplers free their snapshots and files and take no new requests. */
  private async releaseSession(sessionId: string): Promise<void> {
    for (const { doc } of await this.opts.store.scan<SamplerRecord>(keys.samplers())) {
      const s = doc.value
      if (s.sessionId !== sessionId || s.closed) continue
      const snap = this.refs.get(s.id)
      if (snap && s.source.kind === 'snapshot') {
        this.refs.delete(s.id)
        const runId = s.source.runId
        this.snapshotsByRun.set(
          runId,
          (this.snapshotsByRun.get(runId) ?? []).filter((x) => x !== s.id),
        )
        await this.release(this.opts.models.get(s.baseModel), snap, null)
      }
      await this.dropFiles(s.id, true)
    }
  }

  private track(work: Promise<void>): void {
    const tracked = work
      .catch((err: unknown) => this.opts.log.warn({ err }, 'could not release sampler files'))
      .finally(() => this.background.delete(tracked))
    this.background.add(tracked)
  }

  /** The caller's sampler (404 for unknown ids and other users' samplers). */
  async getSampler(userId: string, id: string): Promise<SamplerRecord> {
    const doc = await this.opts.store.get<SamplerRecord>(keys.sampler(id))
    if (!doc || doc.value.owner !== userId) throw tuftError('TUFT_NOT_FOUND', `Unknown sampler '${id}'`)
    await this.checkStillPublished(doc.value)
    return doc.value
  }

  /**
   * A sampler on another user's checkpoint serves only while its owner keeps it published: once
   * unpublished, deleted or expired, the sampler answers 404 (its own files go with its session).
   */
  private async checkStillPublished(s: SamplerRecord): Promise<void> {
    if (s.source.kind !== 'checkpoint' || s.source.publishedBy === undefined) return
    // Recorded as formatCheckpointId wrote it: `<kind>/<name>`, not checked again.
    const [kind, ...name] = s.source.checkpointId.split('/')
    const ref = { kind: kind as CheckpointKind, name: name.join('/') }
    const c = await this.opts.checkpoints.find(s.source.runId, ref)
    if (c && canReadCheckpoint(c, s.owner)) return
    throw tuftError(
      'TUFT_NOT_FOUND',
      `Sampler '${s.id}' was created from ${s.modelPath ?? s.source.checkpointId}, which is no longer published`,
    )
  }

  async listSamplers(userId: string, sessionId: string): Promise<SamplerRecord[]> {
    const all = await this.opts.store.scan<SamplerRecord>(keys.samplers())
    return all.map((e) => e.doc.value).filter((s) => s.owner === userId && s.sessionId === sessionId)
  }

  /** The adapter a sampler serves, or null for the bare base model. */
  adapterRef(s: SamplerRecord): LocalAdapter | null {
    switch (s.source.kind) {
      case 'base':
        return null
      case 'checkpoint':
        return {
          kind: 'peft',
          id: checkpointAdapterId(s.source.runId, s.source.checkpointId),
          dir: this.opts.checkpoints.absDir(s.source),
        }
      case 'snapshot': {
        const snap = this.refs.get(s.id)
        if (snap) return snap.ref
        // Taken by another process, or before a restart: its durable copy (the path names it uniquely).
        if (s.source.dir) return { kind: 'peft', id: s.source.dir, dir: this.opts.files.abs(s.source.dir) }
        if (s.source.writing && Date.now() - s.createdAt < SNAPSHOT_WRITE_GRACE_MS) {
          throw tuftError(
            'TUFT_UNAVAILABLE',
            `Sampler '${s.id}' is still being written to disk by the server that created it; retry shortly`,
          )
        }
        throw tuftError(
          'TUFT_NOT_FOUND',
          `Sampler '${s.id}' no longer holds its in-memory snapshot nor a copy on disk (replaced by newer snapshots of its run, or lost in a restart without a durable store); create a new sampler`,
        )
      }
    }
  }

  /**
   * A readable checkpoint's adapter, for requests that name the checkpoint itself (the OpenAI-compatible
   * API); samplers created from the same checkpoint share its engine id, so it is loaded once.
   */
  checkpointRef(c: CheckpointRecord): LocalAdapter {
    return {
      kind: 'peft',
      id: checkpointAdapterId(c.runId, formatCheckpointId(c.kind, c.name)),
      dir: this.opts.checkpoints.absDir(c),
    }
  }

  /** Unloads `ref` from the model's sampling engine once no request uses it. */
  retire(host: ModelHost, ref: LocalAdapter): void {
    this.cache(host).retire(ref)
  }

  /** Makes `ref` resident in the model's sampling engine for one request; call the answer when done. */
  acquire(host: ModelHost, ref: LocalAdapter): Promise<PinnedAdapter> {
    return this.cache(host).acquire(ref)
  }

  /** The resident adapters of a model's sampling engine (bounded by max_loras). */
  private cache(host: ModelHost): AdapterCache {
    let cache = this.caches.get(host.name)
    if (!cache) {
      cache = new AdapterCache(() => host.sampling(), host.maxLoras, this.opts.log)
      this.caches.set(host.name, cache)
    }
    return cache
  }
}
