// Sampler-owned adapter files (ARCHITECTURE §6): a sampling session created from a checkpoint holds hard
// links to the checkpoint's files, and an ephemeral sampler's snapshot is exported there with a durable
// store, under checkpoint_dir/.samplers/. Deleting or expiring the checkpoint, or a restart, then leaves
// the sampler able to load its adapter again; the files go when the sampler's session expires. What a
// crash left behind (a temp directory, or a published one whose record was never written) is swept at
// boot if older than a cutoff that no live process can still be about to record it after.

import { randomUUID } from 'node:crypto'
import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { syncDir, syncPath } from './durable-state.js'

/** Never a user directory: user directories are URI-encoded user ids, which cannot start with a dot. */
export const SAMPLERS_DIR = '.samplers'

export class SamplerFiles {
  /** root: absolute checkpoint_dir. */
  constructor(private readonly root: string) {}

  abs(rel: string): string {
    return join(this.root, rel)
  }

  /**
   * A sampler-owned copy of the files in `source` (hard links; copies across file systems). ENOENT when
   * `source` is gone.
   */
  async linkFrom(samplerId: string, source: string): Promise<string> {
    return this.publish(samplerId, async (tmp) => {
      for (const entry of await readdir(source, { withFileTypes: true })) {
        if (!entry.isFile()) continue
        const from = join(source, entry.name)
        const to = join(tmp, entry.name)
        await link(from, to).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EXDEV' || err.code === 'EPERM' || err.code === 'ENOTSUP')
            return copyFile(from, to)
          throw err
        })
      }
    })
  }

  /** A sampler-owned directory filled by `write` (e.g. a PEFT export of a snapshot). */
  write(samplerId: string, write: (dir: string) => Promise<unknown>): Promise<string> {
    return this.publish(samplerId, write)
  }

  async remove(rel: string): Promise<void> {
    await rm(this.abs(rel), { recursive: true, force: true })
  }

  /**
   * Removes the entries of the samplers directory that `referenced` (paths relative to checkpoint_dir,
   * as records hold them) does not name and that were last modified before `before`: this process, or
   * another server sharing the directory, may have published a newer one and not recorded it yet.
   * Returns the removed paths.
   */
  async sweep(referenced: ReadonlySet<string>, before: number): Promise<string[]> {
    const parent = join(this.root, SAMPLERS_DIR)
    const names = await readdir(parent).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[]
      throw err
    })
    const removed: string[] = []
    for (const name of names) {
      const rel = join(SAMPLERS_DIR, name)
      if (referenced.has(rel)) continue
      const info = await stat(join(parent, name)).catch(() => null)
      if (info === null || info.mtimeMs >= before) continue
      await this.remove(rel)
      removed.push(rel)
    }
    return removed
  }

  /**
   * Fills a temp directory, fsyncs it and renames it into place, so that a directory a sampler record
   * names is always whole (also after a crash); returns its path relative to checkpoint_dir. Each call
   * gets a fresh name: a replaced sampler's old files can be removed without touching the new ones.
   */
  private async publish(samplerId: string, fill: (dir: string) => Promise<unknown>): Promise<string> {
    const parent = join(this.root, SAMPLERS_DIR)
    const tmp = join(parent, `.tmp-${randomUUID()}`)
    const rel = join(SAMPLERS_DIR, `${encodeURIComponent(samplerId)}.${randomUUID().slice(0, 8)}`)
    await mkdir(tmp, { recursive: true })
    try {
      await fill(tmp)
      await syncDir(tmp)
      await rename(tmp, this.abs(rel))
      await syncPath(parent)
    } catch (err) {
      await rm(tmp, { recursive: true, force: true })
      throw err
    }
    return rel
  }
}
