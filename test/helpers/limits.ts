// A LimitsService with the default per-user limits, for tests that build services without the app.
import pino from 'pino'
import { DEFAULT_USER_LIMITS } from '../../config/schema.js'
import type { Store } from '../../core/persistence.js'
import { LimitsService } from '../../core/services/limits.js'

export function defaultLimits(store: Store): LimitsService {
  return new LimitsService({
    spec: { per_user: { ...DEFAULT_USER_LIMITS }, users: {} },
    store,
    sessionExpiryMs: 60_000,
    memoryBudgetBytes: Number.MAX_SAFE_INTEGER,
    log: pino({ level: 'silent' }),
  })
}
