// The services plugin: wires sessions, futures, checkpoints, training and sampling over the Store and
// the model hosts, starts their timers (session reaper, checkpoint TTL collection) and, on close,
// lets queued training work finish before the engines go away.

import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Logger } from 'pino'
import { newBootId } from '../core/ids.js'
import { CheckpointService } from '../core/services/checkpoints.js'
import { FutureService } from '../core/services/futures.js'
import { SamplingService } from '../core/services/sampling.js'
import { SessionService } from '../core/services/sessions.js'
import { TrainingService } from '../core/services/training.js'

export interface Services {
  futures: FutureService
  sessions: SessionService
  checkpoints: CheckpointService
  training: TrainingService
  sampling: SamplingService
}

declare module 'fastify' {
  interface FastifyInstance {
    tuft: Services
  }
}

/** How often expired sessions and checkpoints are looked for. */
const SWEEP_INTERVAL_MS = 30_000

async function servicesPlugin(app: FastifyInstance): Promise<void> {
  const config = app.tuftConfig
  const log = app.log as unknown as Logger
  const { store, events, models } = app
  const ttlSeconds = config.persistence.future_ttl_seconds
  const futures = new FutureService({
    store,
    events,
    bootId: newBootId(),
    ttlMs: ttlSeconds === null ? null : ttlSeconds * 1000,
  })
  const sessions = new SessionService({
    store,
    expiryMs: config.server.session_expiry_seconds * 1000,
    idempotencyTtlMs: 24 * 3600 * 1000,
  })
  const checkpoints = new CheckpointService({ store, root: config.checkpoint_dir, log, events })
  const sampling = new SamplingService({
    store,
    futures,
    sessions,
    models,
    checkpoints,
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
    sampling,
    events,
    log,
    gapWaitMs: config.server.seq_gap_timeout_ms,
  })
  app.decorate('tuft', { futures, sessions, checkpoints, training, sampling })
  app.addHook('onReady', async () => {
    sessions.startReaper(SWEEP_INTERVAL_MS, (err) => log.error({ err }, 'session reaper failed'))
    checkpoints.startGc(SWEEP_INTERVAL_MS)
  })
  app.addHook('preClose', async () => {
    sessions.close()
    checkpoints.close()
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
  })
}

export default fp(servicesPlugin, {
  name: 'tuft-services',
  fastify: '5.x',
  dependencies: ['tuft-config', 'tuft-persistence', 'tuft-engines'],
})
