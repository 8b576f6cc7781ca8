// Durable training state (ARCHITECTURE §6): with a durable store, each durable point of a run (every
// optim_step under durability=every_step, every save_state and load_state) writes the adapter and
// optimizer state under checkpoint_dir/<user>/<run>/_state/ (temp dir, fsync, rename) and records a
// pointer to it in the run record before the operation's future reports success. An optim_step is
// mostly made durable more cheaply: its forward_backward passes and Adam parameters are logged in the
// pointer, and a restore loads the state and runs the logged steps again.

import { randomUUID } from 'node:crypto'
import { link, mkdir, open, readdir, rename, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Logger } from 'pino'
import { keys } from '../domain/keys.js'
import type { DurablePointer, ReplayStep, TrainingRunRecord } from '../domain/training-run.js'
import type { Manifest, TrainingEngine } from '../engine.js'
import { tuftError } from '../errors.js'
import type { Json, Store } from '../persistence.js'
import { decodeForwardBackwardRequest } from '../wire/fwdbwd-request.js'
import { toTrainItems } from './train-items.js'

export type Durability = 'every_step' | 'checkpoints'

export interface DurableStateOptions {
  store: Store
  /** Absolute checkpoint_dir. */
  root: string
  durability: Durability
  log: Logger
}

/** What a durable point records about the operation that produced it. */
export interface DurablePoint {
  seqId: number
  futureId: string
  step: number
  result: Json
}

/** Logged steps before the whole state is written again: bounds the work a restore repeats. */
export const MAX_REPLAY_STEPS = 16
/**
 * Logged pass bytes before the whole state is written again. The log lives in the run record, which is
 * rewritten with every accepted request; passes larger than this are cheaper to persist as state.
 */
const MAX_REPLAY_BYTES = 256 * 1024

/** Under each run's checkpoint directory; never a checkpoint kind, so never listed as one. */
export const STATE_DIR = '_state'

/** The run's state directory, relative to checkpoint_dir (same user/run layout as its checkpoints). */
export function stateDirOf(run: Pick<TrainingRunRecord, 'owner' | 'id'>): string {
  return join(encodeURIComponent(run.owner), run.id, STATE_DIR)
}

/** fsyncs every file of a flat directory and the directory itself, so a rename publishes whole files. */
export async function syncDir(dir: string): Promise<void> {
  const files = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile())
  // Concurrently: the file system can flush them in one journal commit instead of one each.
  await Promise.all(files.map((e) => syncPath(join(dir, e.name))))
  await syncPath(dir)
}

export async function syncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Runs the pointer's logged steps again on the state loaded from its directory. */
async function replay(id: string, engine: TrainingEngine, pointer: DurablePointer): Promise<void> {
  const steps = pointer.replay ?? []
  if (steps.length === 0) return
  const limits = { vocabSize: engine.info.vocabSize, maxContext: engine.info.maxContext }
  let step = -1
  for (const s of steps) {
    for (const pass of s.passes) {
      const req = decodeForwardBackwardRequest(
        Buffer.from(pass, 'base64'),
        undefined,
        Number.POSITIVE_INFINITY,
      )
      await engine.forwardBackward(toTrainItems(req, id, limits))
    }
    step = (await engine.optimStep(id, s.adam)).step
  }
  if (step !== pointer.step)
    throw new Error(`replaying its logged steps reached step ${step}, not ${pointer.step}`)
}

export class DurableState {
  constructor(private readonly opts: DurableStateOptions) {}

  /** False with a store that does not outlive the process: then nothing is written. */
  get enabled(): boolean {
    return this.opts.store.durable === true
  }

  /** True when every optim_step is a durable point. */
  get everyStep(): boolean {
    return this.enabled && this.opts.durability === 'every_step'
  }

  /**
   * The durable point of an optim_step: logs the step (the passes applied since the previous one, its
   * Adam parameters) in the run's pointer, or writes the whole state when the log is full, there is no
   * state yet, or `step` is null (a pass ran fused with other runs' items). Passes that ran alone replay
   * exactly: a run's forward_backward alone is deterministic (engine double, native engine).
   */
  async step(
    run: TrainingRunRecord,
    engine: TrainingEngine,
    point: DurablePoint,
    step: ReplayStep | null,
  ): Promise<void> {
    const pointer = run.durable
    const replay = [...(pointer?.replay ?? []), ...(step ? [step] : [])]
    const bytes = replay.reduce((n, s) => n + s.passes.reduce((m, pass) => m + pass.length, 0), 0)
    if (!pointer || !step || replay.length > MAX_REPLAY_STEPS || bytes > MAX_REPLAY_BYTES) {
      return this.commit(run, engine, point)
    }
    run.durable = { ...pointer, ...point, at: Date.now(), replay }
    await this.opts.store.put(keys.run(run.id), run)
  }

  /** Writes the run's current state through the engine and makes it the run's durable state. */
  commit(run: TrainingRunRecord, engine: TrainingEngine, point: DurablePoint): Promise<void> {
    return this.publish(run, point, (dir) => engine.saveState(run.id, dir, { optimizer: true }))
  }

  /**
   * Makes an already written training checkpoint (weights + optimizer) the durable state by hard-linking
   * its files: no copy, and deleting the checkpoint later leaves the durable state intact.
   */
  commitFrom(run: TrainingRunRecord, checkpointDir: string, point: DurablePoint): Promise<void> {
    return this.publish(run, point, async (dir) => {
      const files: Manifest['files'] = []
      for (const entry of await readdir(checkpointDir, { withFileTypes: true })) {
        if (!entry.isFile()) continue
        await link(join(checkpointDir, entry.name), join(dir, entry.name))
        files.push({ name: entry.name, bytes: 0 })
      }
      return { files }
    })
  }

  /** Re-creates the run's adapter in the engine as of its last durable point (fresh from its seed if none). */
  async restore(run: TrainingRunRecord, engine: TrainingEngine): Promise<void> {
    await engine.createAdapter(run.id, run.lora)
    const pointer = run.durable
    if (!pointer) return
    try {
      await engine.loadState(run.id, join(this.opts.root, pointer.dir), { optimizer: true })
      await replay(run.id, engine, pointer)
      // A crash can leave older states and temp dirs behind: only the pointer's is needed from now on.
      await this.removeOthers(join(this.opts.root, stateDirOf(run)), basename(pointer.dir))
    } catch (err) {
      await engine.dropAdapter(run.id).catch(() => {})
      throw tuftError(
        'TUFT_PERSISTENCE',
        `Training run '${run.id}': its durable state ${pointer.dir} (step ${pointer.step}) could not be loaded: ${(err as Error).message}`,
        { cause: err },
      )
    }
  }

  private async publish(
    run: TrainingRunRecord,
    point: DurablePoint,
    write: (dir: string) => Promise<Manifest>,
  ): Promise<void> {
    const rel = stateDirOf(run)
    const parent = join(this.opts.root, rel)
    const name = `seq-${point.seqId}`
    const tmp = join(parent, `.tmp-${randomUUID()}`)
    await mkdir(tmp, { recursive: true })
    try {
      await write(tmp)
      await syncDir(tmp)
      // A state of the same seq_id can exist only from a crash after its rename and before its
      // pointer was written; it was never acknowledged, so it is replaced.
      await rm(join(parent, name), { recursive: true, force: true })
      await rename(tmp, join(parent, name))
      await syncPath(parent)
    } catch (err) {
      await rm(tmp, { recursive: true, force: true })
      throw err
    }
    const previous = run.durable?.dir
    const pointer: DurablePointer = { dir: join(rel, name), at: Date.now(), ...point }
    run.durable = pointer
    await this.opts.store.put(keys.run(run.id), run)
    // The previous state is no longer referenced: removed off the operation's path (a crash before
    // that leaves it to the next restore).
    if (previous && previous !== pointer.dir) {
      rm(join(this.opts.root, previous), { recursive: true, force: true }).catch((err: unknown) =>
        this.opts.log.warn({ err, run: run.id }, 'could not remove a superseded training state'),
      )
    }
  }

  /**
   * Removes every entry of a run's state directory but `keep`: listed now (before any new state of the run
   * is written), removed in the background.
   */
  private async removeOthers(parent: string, keep: string): Promise<void> {
    const stale = (await readdir(parent).catch(() => [])).filter((entry) => entry !== keep)
    void Promise.all(stale.map((entry) => rm(join(parent, entry), { recursive: true, force: true }))).catch(
      (err: unknown) => this.opts.log.warn({ err, dir: parent }, 'could not clean a training state dir'),
    )
  }
}
