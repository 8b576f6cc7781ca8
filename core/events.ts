// Domain events: services announce what happens (futures, usage, queues, store latency) and
// observers such as telemetry subscribe, so services never depend on an exporter.

import { EventEmitter } from 'node:events'
import type { RequestTrace } from './engine.js'

export type FutureKind =
  | 'create_model'
  | 'forward'
  | 'forward_backward'
  | 'optim_step'
  | 'save_weights'
  | 'load_weights'
  | 'save_weights_for_sampler'
  | 'sample'
  | 'unload_model'

export type UsageKind = 'training_tokens' | 'prefill_tokens' | 'sampled_tokens' | 'checkpoint_bytes'

export interface TuftEvents {
  /** A future was accepted (state queued). */
  'future.queued': [{ trace: RequestTrace; kind: FutureKind; modelName: string }]
  /** Its work was handed to an engine. */
  'future.running': [{ trace: RequestTrace; kind: FutureKind; modelName: string; waitedMs: number }]
  'future.done': [
    {
      trace: RequestTrace
      kind: FutureKind
      modelName: string
      ok: boolean
      error?: string
      totalMs: number
    },
  ]
  /** Billable consumption, in Tinker's units. checkpoint_bytes may be negative (deletion). */
  usage: [
    {
      userId: string
      modelName: string
      kind: UsageKind
      amount: number
      /** The client session the consumption belongs to (billing events group by it). */
      sessionId?: string
    },
  ]
  /** Work waiting in a model's scheduler after a change. */
  'queue.depth': [{ modelName: string; kind: 'training' | 'sampling'; depth: number }]
  'adapters.resident': [{ modelName: string; count: number }]
  'store.op': [{ store: string; op: 'get' | 'put' | 'delete' | 'scan'; ms: number }]
}

/** One bus per app instance (never a global singleton). */
export class EventBus extends EventEmitter<TuftEvents> {}
