// The `redis` store (TuFT's REDIS mode): documents as hashes {v: version, d: JSON} under
// `<namespace>:<key>`, versions from one counter at `<namespace>:`, compare-and-set in Lua,
// TTL via PEXPIRE, prefix scans via SCAN MATCH. ioredis is imported only when this store is chosen.
// A Redis that does not answer (down, paused, unreachable) fails each command within command_timeout_ms
// as TUFT_UNAVAILABLE (503, retry), naming no host: the URL is in the boot log only.

import { type Static, Type } from '@sinclair/typebox'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { isTuftError, tuftError } from '../core/errors.js'
import type {
  DeleteOptions,
  Json,
  PutOptions,
  Store,
  StoreContext,
  StoredDoc,
  StoreHealth,
  StoreProvider,
} from '../core/persistence.js'
import { byKey, checkIfVersion, checkKey, closedError, encodeValue, expiryFor } from './common.js'

export const RedisConfig = Type.Object(
  {
    redis_url: Type.String({ pattern: '^rediss?://', default: 'redis://localhost:6379/0' }),
    namespace: Type.String({
      // No ':' so that one namespace can never be a prefix of another's keys; no glob characters.
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      default: 'persistence-tuft-server',
    }),
    connect_timeout_ms: Type.Integer({
      minimum: 50,
      default: 5_000,
      description: 'Bound on reaching Redis at boot.',
    }),
    command_timeout_ms: Type.Integer({ minimum: 50, default: 10_000 }),
  },
  { additionalProperties: false },
)
export type RedisConfig = Static<typeof RedisConfig>

// KEYS: document, version counter. ARGV: JSON text, expected version ('' = any), ttl ms ('' = none).
// Returns the new version, or 0 when the expected version did not match.
const PUT_LUA = `
if ARGV[2] ~= '' then
  local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
  if current ~= tonumber(ARGV[2]) then return 0 end
end
local version = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v', version, 'd', ARGV[1])
if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[3]) else redis.call('PERSIST', KEYS[1]) end
return version`

// KEYS: document. ARGV: expected version ('' = any). Returns 1 when deleted.
const DELETE_LUA = `
local current = redis.call('HGET', KEYS[1], 'v')
if not current then return 0 end
if ARGV[1] ~= '' and tonumber(current) ~= tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])`

const SCAN_COUNT = 500
const FETCH_CHUNK = 500
/** The bound on a health probe: healthz answers promptly while Redis does not. */
const HEALTH_TIMEOUT_MS = 1_000

const UNREACHABLE = 'The state store (Redis) does not answer; retry shortly'

export class RedisStore implements Store {
  readonly name = 'redis'
  readonly durable = true
  readonly shared = true
  private readonly root: string
  private closed = false
  private readonly shas = new Map<string, string>()

  constructor(
    private readonly client: Redis,
    namespace: string,
    private readonly commandTimeoutMs: number,
  ) {
    this.root = `${namespace}:`
  }

  async get<T extends Json = Json>(key: string): Promise<StoredDoc<T> | null> {
    this.check(key)
    const [v, d] = await this.call('get', () => this.client.hmget(this.root + key, 'v', 'd'))
    return v == null || d == null ? null : { value: JSON.parse(d) as T, version: Number(v) }
  }

  async put(key: string, value: Json, opts: PutOptions = {}): Promise<number | null> {
    this.check(key)
    checkIfVersion(this.name, opts.ifVersion)
    expiryFor(this.name, opts.ttlMs)
    const text = encodeValue(this.name, value)
    const ttl = opts.ttlMs === undefined ? '' : String(Math.ceil(opts.ttlMs))
    const version = await this.script(PUT_LUA, [this.root + key, this.root], [text, opt(opts.ifVersion), ttl])
    return version === 0 ? null : version
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<boolean> {
    this.check(key)
    checkIfVersion(this.name, opts.ifVersion)
    return (await this.script(DELETE_LUA, [this.root + key], [opt(opts.ifVersion)])) === 1
  }

  async scan<T extends Json = Json>(prefix: string): Promise<{ key: string; doc: StoredDoc<T> }[]> {
    this.check(null)
    const match = `${escapeGlob(this.root + prefix)}*`
    const keys = new Set<string>()
    await this.call('scan', async () => {
      let cursor = '0'
      do {
        const [next, batch] = await this.client.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT)
        // The counter lives at the namespace root itself, which is never a document key.
        for (const k of batch) if (k !== this.root) keys.add(k)
        cursor = next
      } while (cursor !== '0')
    })
    const found: { key: string; doc: StoredDoc<T> }[] = []
    const all = [...keys]
    for (let i = 0; i < all.length; i += FETCH_CHUNK) {
      const chunk = all.slice(i, i + FETCH_CHUNK)
      const pipeline = this.client.pipeline()
      for (const k of chunk) pipeline.hmget(k, 'v', 'd')
      const replies = await this.call('scan', () => pipeline.exec())
      chunk.forEach((k, j) => {
        const [err, reply] = replies?.[j] ?? [new Error('no reply')]
        if (err) throw failure('scan', err)
        const [v, d] = reply as (string | null)[]
        // Keys that expired or were deleted between SCAN and HMGET are simply gone.
        if (v != null && d != null) {
          found.push({
            key: k.slice(this.root.length),
            doc: { value: JSON.parse(d) as T, version: Number(v) },
          })
        }
      })
    }
    return found.sort(byKey)
  }

  async health(): Promise<StoreHealth> {
    if (this.closed) return { ok: false, message: 'the store is closed' }
    if (this.client.status !== 'ready') return { ok: false, message: UNREACHABLE }
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), Math.min(HEALTH_TIMEOUT_MS, this.commandTimeoutMs))
    })
    try {
      const answer = await Promise.race([this.client.ping().catch(() => 'failed'), late])
      return answer === 'PONG' ? { ok: true } : { ok: false, message: UNREACHABLE }
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    // QUIT waits for pending replies; a Redis that is gone must not hold shutdown for long.
    const quit = this.client.quit().catch(() => undefined)
    const timer = setTimeout(() => this.client.disconnect(), 1_000)
    await quit
    clearTimeout(timer)
    this.client.disconnect()
  }

  /** Runs a Lua script by its SHA, loading it once when Redis does not know it (e.g. after a restart). */
  private async script(lua: string, keys: string[], args: string[]): Promise<number> {
    return this.call('script', async () => {
      const sha = this.shas.get(lua)
      if (sha !== undefined) {
        try {
          return (await this.client.evalsha(sha, keys.length, ...keys, ...args)) as number
        } catch (err) {
          if (!(err as Error).message.startsWith('NOSCRIPT')) throw err
        }
      }
      this.shas.set(lua, (await this.client.script('LOAD', lua)) as string)
      return (await this.client.eval(lua, keys.length, ...keys, ...args)) as number
    })
  }

  private async call<R>(op: string, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn()
    } catch (err) {
      if (isTuftError(err)) throw err
      throw failure(op, err as Error)
    }
  }

  private check(key: string | null): void {
    if (this.closed) throw closedError(this.name)
    if (key !== null) checkKey(this.name, key)
  }
}

/**
 * An error Redis answered (a ReplyError: a script or command it refused) or a fault of this code is a
 * server fault; any other (timed out, connection closed or refused, retries exhausted) means Redis is
 * not reachable now.
 */
function failure(op: string, err: Error): Error {
  if (err.name === 'ReplyError' || err instanceof TypeError || err instanceof RangeError)
    return tuftError('TUFT_PERSISTENCE', `Redis ${op} failed: ${err.message}`, { cause: err })
  return tuftError('TUFT_UNAVAILABLE', UNREACHABLE, { cause: err })
}

function opt(n: number | undefined): string {
  return n === undefined ? '' : String(n)
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@')
  }
}

/** Connects within connect_timeout_ms or fails with TUFT_PERSISTENCE naming the URL; never falls back. */
export async function openRedisStore(cfg: RedisConfig, log: Logger): Promise<RedisStore> {
  const url = redactUrl(cfg.redis_url)
  const { Redis } = await import('ioredis')
  let booted = false
  let lastError: Error | undefined
  let reported = false
  const client = new Redis(cfg.redis_url, {
    lazyConnect: true,
    connectTimeout: cfg.connect_timeout_ms,
    commandTimeout: cfg.command_timeout_ms,
    maxRetriesPerRequest: 2,
    // One attempt at boot (the caller fails fast); reconnect with backoff once running.
    retryStrategy: (times) => (booted ? Math.min(times * 200, 2_000) : null),
  })
  client.on('error', (err: Error) => {
    lastError = err
    if (booted && !reported) {
      reported = true
      log.warn({ err, url }, 'Redis connection lost; reconnecting')
    }
  })
  client.on('ready', () => {
    if (reported) log.info({ url }, 'Redis connection restored')
    reported = false
  })
  let timer: NodeJS.Timeout | undefined
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${cfg.connect_timeout_ms} ms`)),
        cfg.connect_timeout_ms,
      )
    })
    await Promise.race([client.connect(), timeout])
    await Promise.race([client.ping(), timeout])
  } catch (err) {
    client.disconnect()
    const reason = lastError?.message ?? (err as Error).message
    throw tuftError('TUFT_PERSISTENCE', `cannot reach Redis at ${url} (persistence mode redis): ${reason}`, {
      cause: err,
    })
  } finally {
    clearTimeout(timer)
  }
  booted = true
  log.info({ url, namespace: cfg.namespace }, 'Redis store connected')
  return new RedisStore(client, cfg.namespace, cfg.command_timeout_ms)
}

export const redisStoreProvider: StoreProvider<typeof RedisConfig> = {
  name: 'redis',
  aliases: ['redis_url', 'REDIS'],
  configSchema: RedisConfig,
  create(cfg: RedisConfig, ctx: StoreContext) {
    return openRedisStore(cfg, ctx.log)
  },
}
