// An exclusive lock on a store directory: a LOCK file holding the owner's pid, created atomically
// (link of a complete temp file). A lock whose pid is dead is stale and taken over.

import { randomBytes } from 'node:crypto'
import { link, open, readFile, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Logger } from 'pino'
import { tuftError } from '../core/errors.js'

export interface DirLock {
  readonly path: string
  release(): Promise<void>
}

// Locks held by this process: its own pid in a LOCK file is not proof of life (pid reuse after a
// container restart), so only this set tells "held by us now" apart from "left by an earlier us".
const heldHere = new Set<string>()

export async function lockDirectory(dir: string, log: Logger): Promise<DirLock> {
  const lockPath = resolve(join(dir, 'LOCK'))
  if (heldHere.has(lockPath)) {
    throw tuftError('TUFT_PERSISTENCE', `file store directory ${dir} is already open in this process`)
  }
  const content = `${process.pid}\n`
  const tmp = `${lockPath}.${process.pid}.${randomBytes(4).toString('hex')}`
  await writeSynced(tmp, content)
  try {
    // Two rounds: the second runs after a stale lock was removed (or another process won the race).
    for (let round = 0; round < 2; round++) {
      try {
        await link(tmp, lockPath)
        heldHere.add(lockPath)
        return { path: lockPath, release: () => release(lockPath, content) }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const owner = await readOwner(lockPath)
      if (owner === null) continue // released between our link and our read
      if (owner !== process.pid && isAlive(owner)) {
        throw tuftError(
          'TUFT_PERSISTENCE',
          `file store directory ${dir} is locked by running process ${owner} (${lockPath}); ` +
            'two servers must not share one directory',
        )
      }
      log.warn({ lock: lockPath, pid: owner }, 'taking over the stale lock of a process that is gone')
      await unlink(lockPath).catch(ignoreMissing)
    }
    throw tuftError('TUFT_PERSISTENCE', `could not lock ${lockPath}: another process keeps taking it`)
  } finally {
    await unlink(tmp).catch(ignoreMissing)
  }
}

async function writeSynced(path: string, content: string): Promise<void> {
  const fh = await open(path, 'wx')
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

async function readOwner(lockPath: string): Promise<number | null> {
  let text: string
  try {
    text = await readFile(lockPath, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  const pid = Number(text.trim())
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    throw tuftError(
      'TUFT_PERSISTENCE',
      `lock file ${lockPath} does not hold a pid; remove it if no server runs`,
    )
  }
  return pid
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function release(lockPath: string, content: string): Promise<void> {
  if (!heldHere.delete(lockPath)) return
  const now = await readFile(lockPath, 'utf8').catch(() => null)
  if (now === content) await unlink(lockPath).catch(ignoreMissing)
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err
}
