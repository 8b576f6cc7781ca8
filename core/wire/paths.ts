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

/**
 * Names become one path segment and one directory: no separators, no control characters, not `.`/`..`.
 * Shared with the JSON schemas so both layers agree.
 */
export const CHECKPOINT_NAME_PATTERN = '^(?!\\.\\.?$)[^/\\\\\\u0000-\\u001f]{1,255}$'
const NAME_RE = new RegExp(CHECKPOINT_NAME_PATTERN, 'u')

export function isCheckpointKind(s: string): s is CheckpointKind {
  return (CHECKPOINT_KINDS as readonly string[]).includes(s)
}

export function isValidCheckpointName(name: string): boolean {
  return NAME_RE.test(name)
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
  if (!isValidCheckpointName(name)) throw bad(`Invalid checkpoint path '${path}': invalid name '${name}'`)
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
  if (!isValidCheckpointName(name)) throw bad(`Invalid checkpoint id '${id}': invalid name '${name}'`)
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
