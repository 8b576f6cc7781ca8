// Session records (spec §3.4, §3.5, §3.24): who opened the session, its metadata and liveness.

export type SessionRecord = {
  id: string
  owner: string
  tags: string[]
  userMetadata: Record<string, string>
  sdkVersion: string | null
  projectId: string | null
  createdAt: number
  lastHeartbeatAt: number
  /** Set once the session stopped heart-beating for longer than the expiry period. */
  expiredAt: number | null
}

export function isSessionExpired(s: SessionRecord, now: number, expiryMs: number): boolean {
  return s.expiredAt !== null || now - s.lastHeartbeatAt > expiryMs
}
