// Sessions (spec §3.4, §3.5, §3.24): created per client holder, kept alive by heartbeats, reaped after
// session_expiry_seconds of silence. Expiry never fails queued training work; it only stops new work
// in that session and drops its queued sample requests (through the onExpire listeners).

import { keys } from '../domain/keys.js'
import { isSessionExpired, type SessionRecord } from '../domain/session.js'
import { tuftError } from '../errors.js'
import { newSessionId } from '../ids.js'
import type { Store } from '../persistence.js'

export interface SessionServiceOptions {
  store: Store
  expiryMs: number
  /** Retention of idempotency keys for create_session retries. */
  idempotencyTtlMs: number
}

export interface CreateSessionInput {
  tags?: string[] | undefined
  userMetadata?: Record<string, unknown> | undefined
  sdkVersion?: string | undefined
  projectId?: string | undefined
}

/** user_metadata is kept with the session or run and echoed in every listing of it: bounded. */
export const MAX_USER_METADATA_BYTES = 16 * 1024

/**
 * user_metadata must be string → string for the SDK's validator (spec §1.6); more than
 * MAX_USER_METADATA_BYTES of JSON is a 400.
 */
export function stringMap(value: Record<string, unknown> | undefined | null): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v)
  const bytes = Buffer.byteLength(JSON.stringify(out))
  if (bytes > MAX_USER_METADATA_BYTES) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `user_metadata is ${bytes} bytes as JSON; at most ${MAX_USER_METADATA_BYTES} are kept`,
    )
  }
  return out
}

export class SessionService {
  private reaper: NodeJS.Timeout | null = null
  private readonly expireListeners: ((sessionId: string) => void)[] = []

  constructor(private readonly opts: SessionServiceOptions) {}

  /** Creates a session; a retry carrying the same X-Idempotency-Key returns the first one. */
  async create(owner: string, input: CreateSessionInput, idempotencyKey?: string): Promise<SessionRecord> {
    const idemKey = idempotencyKey ? keys.sessionIdempotency(owner, idempotencyKey) : null
    if (idemKey) {
      const prior = await this.opts.store.get<string>(idemKey)
      if (prior) {
        const existing = await this.opts.store.get<SessionRecord>(keys.session(prior.value))
        if (existing) return existing.value
      }
    }
    const now = Date.now()
    const session: SessionRecord = {
      id: newSessionId(),
      owner,
      tags: input.tags ?? [],
      userMetadata: stringMap(input.userMetadata),
      sdkVersion: input.sdkVersion ?? null,
      projectId: input.projectId ?? null,
      createdAt: now,
      lastHeartbeatAt: now,
      expiredAt: null,
    }
    await this.opts.store.put(keys.session(session.id), session)
    if (idemKey) await this.opts.store.put(idemKey, session.id, { ttlMs: this.opts.idempotencyTtlMs })
    return session
  }

  /** The caller's session (404 for unknown ids and other users' sessions). */
  async get(owner: string, id: string): Promise<SessionRecord> {
    const doc = await this.opts.store.get<SessionRecord>(keys.session(id))
    if (!doc || doc.value.owner !== owner) throw tuftError('TUFT_NOT_FOUND', `Unknown session '${id}'`)
    return doc.value
  }

  /** The caller's session, which must still be live to start new work in it. */
  async getLive(owner: string, id: string): Promise<SessionRecord> {
    const session = await this.get(owner, id)
    if (isSessionExpired(session, Date.now(), this.opts.expiryMs)) {
      throw tuftError(
        'TUFT_NOT_FOUND',
        `Session '${id}' expired after missing heartbeats; create a new session`,
      )
    }
    return session
  }

  async heartbeat(owner: string, id: string): Promise<void> {
    const session = await this.getLive(owner, id)
    session.lastHeartbeatAt = Date.now()
    await this.opts.store.put(keys.session(id), session)
  }

  async setProject(owner: string, id: string, projectId: string | null): Promise<void> {
    const session = await this.get(owner, id)
    session.projectId = projectId
    await this.opts.store.put(keys.session(id), session)
  }

  /** The caller's sessions, newest first. */
  async list(owner: string): Promise<SessionRecord[]> {
    const all = await this.opts.store.scan<SessionRecord>(keys.sessions())
    return all
      .map((e) => e.doc.value)
      .filter((s) => s.owner === owner)
      .sort((a, b) => b.createdAt - a.createdAt)
  }

  onExpire(listener: (sessionId: string) => void): void {
    this.expireListeners.push(listener)
  }

  /** Marks sessions silent for longer than the expiry period as expired. */
  async reap(now = Date.now()): Promise<string[]> {
    const expired: string[] = []
    for (const { key, doc } of await this.opts.store.scan<SessionRecord>(keys.sessions())) {
      const s = doc.value
      if (s.expiredAt === null && isSessionExpired(s, now, this.opts.expiryMs)) {
        s.expiredAt = now
        if ((await this.opts.store.put(key, s, { ifVersion: doc.version })) !== null) expired.push(s.id)
      }
    }
    for (const id of expired) for (const listener of this.expireListeners) listener(id)
    return expired
  }

  startReaper(intervalMs: number, onError: (err: unknown) => void): void {
    this.reaper = setInterval(() => this.reap().catch(onError), intervalMs)
    this.reaper.unref()
  }

  close(): void {
    if (this.reaper) clearInterval(this.reaper)
    this.reaper = null
  }
}
