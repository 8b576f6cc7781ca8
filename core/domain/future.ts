// Future records (spec §4): the state of one asynchronous operation and its stored result. Results are
// JSON documents; tensor results keep their arrays base64-packed (see core/services/results.ts).

import type { FailureCategory } from '../errors.js'
import type { FutureKind } from '../events.js'
import type { Json } from '../persistence.js'

export type FutureState = 'pending' | 'running' | 'done' | 'failed'

export type FutureRecord = {
  id: string
  owner: string
  kind: FutureKind
  modelId: string | null
  state: FutureState
  /** The server process that accepted it; pending futures of another boot were lost in a restart. */
  boot: string
  createdAt: number
  finishedAt: number | null
  result: Json
  error: { message: string; category: FailureCategory } | null
}

export function isFinished(f: FutureRecord): boolean {
  return f.state === 'done' || f.state === 'failed'
}
