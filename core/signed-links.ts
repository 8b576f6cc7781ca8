// Self-authorising download links (checkpoint archives, session trace exports): a token is
// `<payload>.<signature>`, the payload a base64url JSON array of the fields the link grants, the
// signature an HMAC under a key of this process (links die with it; they are valid for minutes anyway).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** Exactly `<payload>.<signature>`, both base64url: nothing before, between or after them. */
const TOKEN = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/

export class LinkSigner {
  private readonly key = randomBytes(32)

  /** A token carrying `fields` (JSON values) and `expiresAt` (ms since the epoch). */
  sign(fields: readonly unknown[], expiresAt: number): string {
    const payload = Buffer.from(JSON.stringify([...fields, expiresAt])).toString('base64url')
    return `${payload}.${this.mac(payload)}`
  }

  /** The fields of a token this signer made and that has not expired, else null. */
  open(token: string, now = Date.now()): unknown[] | null {
    const parts = TOKEN.exec(token)
    if (!parts) return null
    const [, payload, sig] = parts as unknown as [string, string, string]
    const expected = Buffer.from(this.mac(payload))
    const given = Buffer.from(sig)
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return null
    let fields: unknown
    try {
      fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))
    } catch {
      return null
    }
    if (!Array.isArray(fields) || fields.length === 0) return null
    const expiresAt = fields.at(-1)
    if (typeof expiresAt !== 'number' || now > expiresAt) return null
    return fields.slice(0, -1)
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url')
  }
}
