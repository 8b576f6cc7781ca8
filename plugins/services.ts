// The services plugin: wires sessions, futures, checkpoints, training and sampling over the Store and
// the model hosts, starts their timers (session reaper, checkpoint TTL collection) and, on close,
// lets queued training work finish before the engines go away.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { newBootId } from '../core/ids.js'
import { CheckpointService } from '../core/services/checkpoints.js'
import { DurableState } from '../core/services/durable-state.js'
import { FutureService } from '../core/services/futures.js'
import { Ownership } from '../core/services/ownership.js'
import { reconcileFromDurableState } from '../core/services/recovery.js'
import { RunMetrics } from '../core/services/run-metrics.js'
import { SampleCompletions } from '../core/services/sample-completions.js'
import { SamplerFiles } from '../core/services/sampler-files.js'
import { SamplerStore } from '../core/services/samplers.js'
import { SamplingService } from '../core/services/sampling.js'
import { SessionTraces } from '../core/services/session-traces.js'
import { SessionService } from '../core/services/sessions.js'
import { TrainingService } from '../core/services/training.js'
import { selfUrl } from './base-url.js'

export interface Services {
  futures: FutureService
  sessions: SessionService
  /** Each session's timeline, for trace_export. */
  sessionTraces: SessionTraces
  checkpoints: CheckpointService
  training: TrainingService
  samplers: SamplerStore
  sampling: SamplingService
  ownership: Ownership
  /**
   * The retrieve_futures feed (SDK ≥ 0.26), or null where a poll could reach a process that did not
   * run the samples or a restart could lose them (shared or durable store): clients then poll each future.
   */
  completions: SampleCompletions | null
}

declare module 'fastify' {
  interface FastifyInstance {
    tuft: Services
  }
}

/** How often expired sessions and checkpoints are looked for. */
const SWEEP_INTERVAL_MS = 30_000

/**
 * Files a crash left (checkpoint temp dirs, unrecorded sampler files) are removed at boot if older than
 * the boot, or than this when the store is shared: another server may be writing into the same
 * checkpoint_dir, or about to record what it wrote there.
 */
const SHARED_LEFTOVER_GRACE_MS = 3_600_000

async function servicesPlugin(app: FastifyInstance): Promise<void> {
  const config = app.tuftConfig
  const log = app.log as unknown as Logger
  const { store, events, models } = app
  const ttlSeconds = config.persistence.future_ttl_seconds
  const bootId = newBootId()
  const ownership = new Ownership({
    store,
    bootId,
    selfUrl: () => selfUrl(app),
    ttlMs: config.persistence.lease_ttl_ms,
    log,
  })
  const futures = new FutureService({
    store,
    events,
    bootId,
    ttlMs: ttlSeconds === null ? null : ttlSeconds * 1000,
    log,
    isBootAlive: (id) => ownership.isBootAlive(id),
    reconcileLost: reconcileFromDurableState(store),
  })
  const sessions = new SessionService({
    store,
    expiryMs: config.server.session_expiry_seconds * 1000,
    idempotencyTtlMs: 24 * 3600 * 1000,
  })
  const sessionTraces = new SessionTraces({ events, sessions })
  const checkpoints = new CheckpointService({ store, root: config.checkpoint_dir, log, events })
  const samplers = new SamplerStore({
    store,
    sessions,
    models,
    checkpoints,
    files: new SamplerFiles(config.checkpoint_dir),
    log,
  })
  const sampling = new SamplingService({
    futures,
    sessions,
    samplers,
    models,
    events,
    log,
    queueLimit: config.server.sample_queue_limit,
  })
  const training = new TrainingService({
    store,
    futures,
    sessions,
    models,
    checkpoints,
    samplers,
    events,
    log,
    gapWaitMs: config.server.seq_gap_timeout_ms,
    durable: new DurableState({
      store,
      root: config.checkpoint_dir,
      durability: config.persistence.durability,
      log,
    }),
    ownership,
    metrics: new RunMetrics({ store, limit: config.server.run_metrics_history, log }),
  })
  const completions = store.shared || store.durable ? null : new SampleCompletions(events)
  if (completions) sessions.onExpire((id) => completions.dropSession(id))
  app.decorate('tuft', {
    futures,
    sessions,
    sessionTraces,
    checkpoints,
    training,
    samplers,
    sampling,
    ownership,
    completions,
  })
  const bootedAt = Date.now()
  let orphanSweep: Promise<void> = Promise.resolve()
  app.addHook('onReady', async () => {
    await ownership.start()
    sessions.startReaper(SWEEP_INTERVAL_MS, (err) => log.error({ err }, 'session reaper failed'))
    checkpoints.startGc(SWEEP_INTERVAL_MS)
    sampling.startSweeper(SWEEP_INTERVAL_MS / 6)
    // Leftovers of a crash: in the background, boot does not wait for a directory scan.
    const before = store.shared ? Date.now() - SHARED_LEFTOVER_GRACE_MS : bootedAt
    const leftovers = checkpoints.sweepLeftovers(before).then((removed) => {
      if (removed.length > 0) log.info({ removed }, 'removed checkpoint temp dirs a crash left')
    })
    orphanSweep = Promise.all([samplers.sweepOrphanFiles(before), leftovers]).then(
      () => undefined,
      (err: unknown) => log.warn({ err }, 'sweep of files a crash left failed'),
    )
  })
  app.addHook('preClose', async () => {
    sessions.close()
    checkpoints.close()
    await orphanSweep
    await sampling.close()
    // Exports still need the engines, which close after this.
    await samplers.close()
    const grace = config.server.shutdown_grace_ms
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      training.drain(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, grace)
      }),
    ])
    clearTimeout(timer)
    training.close()
    // Peers may take this process's runs over at once instead of waiting for the leases to lapse.
    await ownership.releaseAll()
  })
}

export default fp(servicesPlugin, {
  name: 'tuft-services',
  fastify: '5.x',
  dependencies: ['tuft-config', 'tuft-persistence', 'tuft-engines'],
})
