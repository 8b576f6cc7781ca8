// tinker:// checkpoint paths and checkpoint ids (spec §5.10, §3.23): `tinker://<run>/<kind>/<name>`,
// ids `weights/<name>` | `sampler_weights/<name>` | bare `<name>`, and the checkpoint route tails.

import { tuftError } from '../errors.js'

export type CheckpointKind = 'weights' | 'sampler_weights'
export const CHECKPOINT_KINDS: readonly CheckpointKind[] = ['weights', 'sampler_weights']

export interface TinkerPath {
  runId: string
  kind: CheckpointKind
  name: string
}

/** A checkpoint id; `kind` is null for a bare name (the caller looks in both kinds). */
export interface CheckpointRef {
  kind: CheckpointKind | null
  name: string
}

export type CheckpointAction = 'publish' | 'ttl' | 'archive'

const SCHEME = 'tinker://'

/** A name becomes one directory: at most what a filesystem allows for one path component. */
export const MAX_CHECKPOINT_NAME_BYTES = 255

/**
 * Characters a name may not hold: path separators; C0, DEL and C1 controls (Cc); line and paragraph
 * separators; and the bidirectional controls that make a name display as another one in a listing
 * (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069).
 */
const FORBIDDEN = /[/\\\p{Cc}\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u

/** Why `name` cannot be a checkpoint name, or null when it can. */
export function checkpointNameProblem(name: string): string | null {
  if (name === '') return 'it is empty'
  if (name === '.' || name === '..') return `'.' and '..' are not names`
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > MAX_CHECKPOINT_NAME_BYTES) {
    return `it is ${bytes} bytes in UTF-8; at most ${MAX_CHECKPOINT_NAME_BYTES}`
  }
  const c = FORBIDDEN.exec(name)?.[0]
  if (c !== undefined) {
    const code = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`
    return `it holds ${code}; names hold no '/', '\\', control or bidirectional-control characters`
  }
  return null
}

export function isCheckpointKind(s: string): s is CheckpointKind {
  return (CHECKPOINT_KINDS as readonly string[]).includes(s)
}

export function isValidCheckpointName(name: string): boolean {
  return checkpointNameProblem(name) === null
}

/** The name of a checkpoint to write, or a 400 that says what is wrong with it. */
export function checkCheckpointName(name: string): string {
  const problem = checkpointNameProblem(name)
  if (problem !== null) throw bad(`Invalid checkpoint name ${JSON.stringify(name)}: ${problem}`)
  return name
}

function bad(message: string): Error {
  return tuftError('TUFT_BAD_REQUEST', message)
}

/** Parses `tinker://<run>/<kind>/<name>`; anything else is a 400 that quotes the path. */
export function parseTinkerPath(path: string): TinkerPath {
  if (!path.startsWith(SCHEME)) throw bad(`Invalid checkpoint path '${path}': must start with ${SCHEME}`)
  const parts = path.slice(SCHEME.length).split('/')
  if (parts.length !== 3) {
    throw bad(`Invalid checkpoint path '${path}': expected ${SCHEME}<training_run_id>/<kind>/<name>`)
  }
  const [runId, kind, name] = parts as [string, string, string]
  if (!runId) throw bad(`Invalid checkpoint path '${path}': empty training run id`)
  if (!isCheckpointKind(kind)) {
    throw bad(`Invalid checkpoint path '${path}': kind must be 'weights' or 'sampler_weights', got '${kind}'`)
  }
  const problem = checkpointNameProblem(name)
  if (problem !== null)
    throw bad(`Invalid checkpoint path ${JSON.stringify(path)}: invalid name (${problem})`)
  return { runId, kind, name }
}

export function formatTinkerPath(p: TinkerPath): string {
  return `${SCHEME}${p.runId}/${p.kind}/${p.name}`
}

/** Parses `weights/<name>`, `sampler_weights/<name>` or a bare `<name>`. */
export function parseCheckpointId(id: string): CheckpointRef {
  const slash = id.indexOf('/')
  const kind = slash < 0 ? null : id.slice(0, slash)
  const name = slash < 0 ? id : id.slice(slash + 1)
  if (kind !== null && !isCheckpointKind(kind)) {
    throw bad(`Invalid checkpoint id '${id}': expected weights/<name>, sampler_weights/<name> or <name>`)
  }
  const problem = checkpointNameProblem(name)
  if (problem !== null) throw bad(`Invalid checkpoint id ${JSON.stringify(id)}: invalid name (${problem})`)
  return { kind, name }
}

export function formatCheckpointId(kind: CheckpointKind, name: string): string {
  return `${kind}/${name}`
}

const ACTION_BY_METHOD: Record<string, CheckpointAction | undefined> = {
  GET: 'archive',
  POST: 'publish',
  PUT: 'ttl',
  DELETE: 'publish',
}

/**
 * Splits the wildcard tail of `/training_runs/<run>/checkpoints/*` into the checkpoint and the action
 * the method implies. DELETE is unpublish only when the tail ends in `/publish` after a real id, so a
 * checkpoint named `publish` (`weights/publish`) can still be deleted.
 */
export function splitCheckpointTail(
  method: string,
  tail: string,
): { checkpoint: CheckpointRef; action: CheckpointAction | null } {
  const upper = method.toUpperCase()
  const action = ACTION_BY_METHOD[upper]
  const cut = tail.lastIndexOf('/')
  const hasAction = action !== undefined && cut > 0 && tail.slice(cut + 1) === action
  const head = hasAction ? tail.slice(0, cut) : tail
  if (upper === 'DELETE' && (!hasAction || isCheckpointKind(head))) {
    return { checkpoint: parseCheckpointId(tail), action: null }
  }
  if (!hasAction) {
    throw tuftError('TUFT_NOT_FOUND', `No checkpoint route for ${upper} .../checkpoints/${tail}`)
  }
  return { checkpoint: parseCheckpointId(head), action: action }
}
