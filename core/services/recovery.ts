// Restart recovery of futures: a future left pending by a process that died is settled by whichever
// process is asked about it. If its operation reached its run's durable point before the crash (the
// pointer was written, the future's own update was not), it is reported finished with the recorded
// result; otherwise FutureService reports it lost (spec §4.5).

import type { FutureRecord } from '../domain/future.js'
import { keys } from '../domain/keys.js'
import type { TrainingRunRecord } from '../domain/training-run.js'
import type { Store } from '../persistence.js'

/** FutureServiceOptions.reconcileLost for futures of training runs. */
export function reconcileFromDurableState(store: Store): (f: FutureRecord) => Promise<FutureRecord | null> {
  return async (f) => {
    if (f.modelId === null) return null
    const pointer = (await store.get<TrainingRunRecord>(keys.run(f.modelId)))?.value.durable
    if (!pointer || pointer.futureId !== f.id) return null
    return { ...f, state: 'done', finishedAt: pointer.at, result: pointer.result, error: null }
  }
}
