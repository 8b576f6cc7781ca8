// Argument checks and helpers shared by every Store provider, so they all reject the same bad input
// with the same coded errors.

import { homedir } from 'node:os'
import { tuftError } from '../core/errors.js'
import type { Json } from '../core/persistence.js'

export function checkKey(store: string, key: string): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw tuftError('TUFT_PERSISTENCE', `${store} store: keys must be non-empty strings`)
  }
}

/** The absolute expiry time for a ttlMs option, or null when the key never expires. */
export function expiryFor(store: string, ttlMs: number | undefined, now = Date.now()): number | null {
  if (ttlMs === undefined) return null
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw tuftError('TUFT_PERSISTENCE', `${store} store: ttlMs must be a positive number, got ${ttlMs}`)
  }
  return now + Math.ceil(ttlMs)
}

export function checkIfVersion(store: string, ifVersion: number | undefined): void {
  if (ifVersion !== undefined && !(Number.isSafeInteger(ifVersion) && ifVersion >= 0)) {
    throw tuftError('TUFT_PERSISTENCE', `${store} store: ifVersion must be an integer >= 0, got ${ifVersion}`)
  }
}

/** Serialises a document; every store keeps JSON text so callers never share mutable objects with it. */
export function encodeValue(store: string, value: Json): string {
  const text = JSON.stringify(value)
  if (text === undefined) throw tuftError('TUFT_PERSISTENCE', `${store} store: value is not JSON`)
  return text
}

export function closedError(store: string): Error {
  return tuftError('TUFT_PERSISTENCE', `${store} store is closed`)
}

/** Key order used by every scan: plain string comparison, the same in every provider. */
export function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/** Expands a leading `~/` as TuFT's YAML defaults do (e.g. `~/.cache/tuft/...`). */
export function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path
}
