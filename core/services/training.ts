// Training runs (spec §3.9-3.17, §4.6, §7): creates LoRA adapters, orders every operation of a run
// through its Sequencer, sends forward/backward work to the model's fused scheduler and everything
// else straight to the training engine, and records checkpoints. Ownership is checked before any work.

import { randomInt } from 'node:crypto'
import type { Logger } from 'pino'
import { keys } from '../domain/keys.js'
import type { SessionRecord } from '../domain/session.js'
import type { TrainingRunRecord } from '../domain/training-run.js'
import { adamParamsOf, type LoraSpec, type StepOptions } from '../engine.js'
import { isTuftError, tuftError } from '../errors.js'
import type { EventBus, FutureKind } from '../events.js'
import { generatedCheckpointName, trainingRunId } from '../ids.js'
import type { Json, Store } from '../persistence.js'
import { checkCheckpointName, formatTinkerPath, parseTinkerPath } from '../wire/paths.js'
import type { ForwardBackwardBody } from '../wire/proto.js'
import type {
  CreateModelRequest,
  LoadWeightsRequest,
  OptimStep,
  SaveWeightsForSamplerRequest,
  SaveWeightsRequest,
} from '../wire/schemas.js'
import type { LocalAdapter } from './adapter-cache.js'
import type { CheckpointService } from './checkpoints.js'
import type { DurableState } from './durable-state.js'
import type { FutureService } from './futures.js'
import type { LimitsService } from './limits.js'
import type { ModelHost, ModelHosts } from './models.js'
import type { Ownership } from './ownership.js'
import { storeFwdBwd } from './results.js'
import type { MetricPoint, RunHistory, RunMetrics } from './run-metrics.js'
import type { SamplerStore } from './samplers.js'
import { Sequencer } from './sequencer.js'
import type { SessionService } from './sessions.js'
import { stringMap } from './sessions.js'
import { toTrainItems } from './train-items.js'

export interface TrainingServiceOptions {
  store: Store
  futures: FutureService
  sessions: SessionService
  models: ModelHosts
  checkpoints: CheckpointService
  samplers: SamplerStore
  events: EventBus
  log: Logger
  gapWaitMs: number
  /** Makes training state durable (durable stores only) and restores it in a later process. */
  durable: DurableState
  /** Which process serves which run when several share the store. */
  ownership: Ownership
  metrics: RunMetrics
  /** Decides max_training_runs, max_lora_rank, max_tokens_per_request and memory admission. */
  limits: LimitsService
}

export type FutureRef = { request_id: string; model_id: string }

interface LiveRun {
  record: TrainingRunRecord
  sequencer: Sequencer
  host: ModelHost
  /** Settles when the adapter exists in the engine (or creation failed). */
  created: Promise<void>
  /** The metrics of the operations run here, for the console's loss curves. */
  history: RunHistory
  /** The optimizer step counter after the last optim_step run here (recorded in durable pointers). */
  step: number
  /** Set once another process took the run over: what is still queued here fails instead of running. */
  lost: boolean
  /**
   * forward_backward bodies (base64) applied since the last optim_step, logged with its durable point;
   * null once one of them ran fused with other runs' items (a replay alone could differ in the last bits).
   */
  passes: string[] | null
}

/** How many accepted (seq_id, future) pairs the run record keeps for resubmissions after a restart. */
const RECENT_SEQS = 64

/** The bytes as base64, without copying them first. */
function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/**
 * A training submission in flight for a user. While any is unsettled, a gap in some run's seq_ids may
 * still be filled by it; once all are settled, gaps are skipped at once (spec §4.6: gaps never stall).
 */
export interface Submission {
  settle(): void
  /** The submitting request's trace context (RequestTrace.otelContext), when telemetry is on. */
  readonly otelContext?: unknown
}

export class TrainingService {
  private readonly runs = new Map<string, LiveRun>()
  private readonly unsettled = new Map<string, number>()
  private readonly adopting = new Map<string, Promise<LiveRun>>()

  constructor(private readonly opts: TrainingServiceOptions) {}

  beginSubmission(userId: string, otelContext?: unknown): Submission {
    this.unsettled.set(userId, (this.unsettled.get(userId) ?? 0) + 1)
    let settled = false
    return {
      otelContext,
      settle: () => {
        if (settled) return
        settled = true
        const left = (this.unsettled.get(userId) ?? 1) - 1
        if (left > 0) {
          this.unsettled.set(userId, left)
          return
        }
        this.unsettled.delete(userId)
        for (const run of this.runs.values()) if (run.record.owner === userId) run.sequencer.poke()
      },
    }
  }

  // ---- create / info / unload ----

  async createModel(userId: string, body: CreateModelRequest, otelContext?: unknown): Promise<FutureRef> {
    const session = await this.opts.sessions.getLive(userId, body.session_id)
    const id = trainingRunId(session.id, body.model_seq_id)
    const existing =
      this.runs.get(id)?.record ?? (await this.opts.store.get<TrainingRunRecord>(keys.run(id)))?.value
    if (existing) {
      if (existing.owner !== userId) throw tuftError('TUFT_NOT_FOUND', `Unknown session '${body.session_id}'`)
      return { request_id: existing.createFutureId, model_id: id }
    }
    // Oversized user_metadata is a 400 before anything is claimed (stringMap refuses it).
    if (body.user_metadata) stringMap(body.user_metadata)
    const host = this.opts.models.get(body.base_model)
    if (!host.supports('training'))
      throw tuftError('TUFT_BAD_REQUEST', `Model '${host.name}' is configured for sampling only`)
    const wire = body.lora_config
    if (!wire)
      throw tuftError('TUFT_BAD_REQUEST', 'lora_config is required (this server trains LoRA adapters only)')
    if (wire.rank > host.maxLoraRank) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        `LoRA rank ${wire.rank} exceeds this model's maximum of ${host.maxLoraRank}`,
      )
    }
    if (!wire.train_attn && !wire.train_mlp && !wire.train_unembed) {
      throw tuftError('TUFT_BAD_REQUEST', 'At least one of train_attn, train_mlp, train_unembed must be true')
    }
    const { limits } = this.opts
    limits.checkLoraRank(userId, wire.rank)
    const lora: LoraSpec = {
      rank: wire.rank,
      alpha: host.loraAlpha(wire.rank),
      seed: wire.seed ?? randomInt(2 ** 31),
      trainAttn: wire.train_attn,
      trainMlp: wire.train_mlp,
      trainUnembed: wire.train_unembed,
    }
    return limits.admitTrainingRun(userId, async () => {
      // A model still loading has its memory booked once it is ready, before the adapter is created.
      if (host.state === 'ready') limits.bookMemory(id, host.name, await host.trainingMemory(lora))
      try {
        return await this.startCreating(userId, id, session, host, lora, body, otelContext)
      } catch (err) {
        limits.releaseMemory(id)
        throw err
      }
    })
  }

  /** Records a new run and starts creating its adapter; the future reports the outcome. */
  private async startCreating(
    userId: string,
    id: string,
    session: SessionRecord,
    host: ModelHost,
    lora: LoraSpec,
    body: CreateModelRequest,
    otelContext: unknown,
  ): Promise<FutureRef> {
    await this.claim(id)
    const future = await this.opts.futures.create({
      owner: userId,
      kind: 'create_model',
      modelId: id,
      modelName: host.name,
      trace: { userId, sessionId: session.id, trainingRunId: id, otelContext },
    })
    const now = Date.now()
    const record: TrainingRunRecord = {
      id,
      owner: userId,
      sessionId: session.id,
      modelSeqId: body.model_seq_id,
      baseModel: host.name,
      lora,
      userMetadata: body.user_metadata ? stringMap(body.user_metadata) : null,
      projectId: session.projectId,
      state: 'creating',
      createFutureId: future.id,
      failure: null,
      createdAt: now,
      lastRequestAt: now,
    }
    await this.opts.store.put(keys.run(id), record)
    const created = this.opts.futures.run(future.id, async () => {
      try {
        await host.whenReady()
        this.opts.limits.bookMemory(id, host.name, await host.trainingMemory(lora))
        await host.training().createAdapter(id, lora)
        await this.setState(record, 'ready', null)
        this.opts.log.info({ run: id, model: host.name, rank: lora.rank }, 'training run created')
        this.announceResident(host)
        return { model_id: id, type: 'create_model' }
      } catch (err) {
        this.opts.limits.releaseMemory(id)
        await this.setState(record, 'failed', (err as Error).message)
        throw err
      }
    })
    this.track(record, host, created, await this.opts.metrics.open(id, true), null)
    return { request_id: future.id, model_id: id }
  }

  private track(
    record: TrainingRunRecord,
    host: ModelHost,
    created: Promise<void>,
    history: RunHistory,
    resume: { released: number; seen: [number, string][] } | null,
  ): LiveRun {
    const run: LiveRun = {
      record,
      host,
      created,
      history,
      step: record.durable?.step ?? 0,
      lost: false,
      passes: [],
      sequencer: new Sequencer({
        gapWaitMs: this.opts.gapWaitMs,
        mayStillArrive: () => (this.unsettled.get(record.owner) ?? 0) > 0,
        onGapSkipped: (missing) => this.opts.log.info({ run: record.id, missing }, 'seq_id gap skipped'),
        ...(resume ? { resume } : {}),
      }),
    }
    this.runs.set(record.id, run)
    return run
  }

  /**
   * Serves a run that no process here has loaded: after a restart, or taken over from a peer whose
   * lease lapsed. The adapter comes back from the last durable point; seq_ids continue above the last
   * one accepted, and resubmissions of accepted ones get their (settled) futures.
   */
  private adopt(record: TrainingRunRecord): Promise<LiveRun> {
    let adopting = this.adopting.get(record.id)
    if (!adopting) {
      adopting = this.recover(record).finally(() => this.adopting.delete(record.id))
      this.adopting.set(record.id, adopting)
    }
    return adopting
  }

  private async recover(stale: TrainingRunRecord): Promise<LiveRun> {
    await this.claim(stale.id)
    // Read again under the lease: the previous holder may have written a later durable point.
    const record = (await this.opts.store.get<TrainingRunRecord>(keys.run(stale.id)))?.value ?? stale
    // The operation of that point is done even if its future's own record was lost (a crash before it
    // was written, a torn journal tail): say so now, while the pointer still names it. Once new work
    // moves the pointer on, the future would read as lost, and its client would apply it again.
    if (record.durable) await this.opts.futures.settleIfLost(record.durable.futureId)
    const host = this.opts.models.get(record.baseModel)
    const created = (async () => {
      try {
        await host.whenReady()
        // The run exists already: it is served whatever memory it takes.
        this.opts.limits.bookMemory(record.id, host.name, await host.trainingMemory(record.lora), true)
        await this.opts.durable.restore(record, host.training())
        if (record.state === 'creating') await this.setState(record, 'ready', null)
        this.opts.log.info(
          { run: record.id, step: record.durable?.step ?? 0, seq: record.durable?.seqId ?? 0 },
          'training run recovered from its durable state',
        )
      } catch (err) {
        this.opts.log.error({ run: record.id, err }, 'training run could not be recovered')
        this.opts.limits.releaseMemory(record.id)
        await this.setState(record, 'failed', (err as Error).message).catch(() => {})
      }
    })()
    const released = Math.max(record.lastSeqId ?? 0, record.durable?.seqId ?? 0)
    const history = await this.opts.metrics.open(record.id, false)
    return this.track(record, host, created, history, { released, seen: record.recentSeqs ?? [] })
  }

  /**
   * Where requests for the run are served when several processes share the store: here (null) when
   * this process holds the run or takes it over now, else the live holder's base URL. Unknown runs,
   * other users' runs and finished ones are "here": their handler answers them as it answers everyone.
   */
  async placement(userId: string, id: string): Promise<string | null> {
    const { ownership } = this.opts
    if (!ownership.needed || ownership.holds(id)) return null
    const record = await this.findRun(id)
    if (!record || record.owner !== userId || record.state === 'failed' || record.state === 'unloaded') {
      return null
    }
    return ownership.tryClaim(id, () => this.evict(id))
  }

  /** Takes the run's lease here. The router relays requests for runs held elsewhere before this runs,
   * so a live holder here is a race with a peer: the client retries. */
  private async claim(id: string): Promise<void> {
    const holder = await this.opts.ownership.tryClaim(id, () => this.evict(id))
    if (holder !== null) {
      throw tuftError('TUFT_UNAVAILABLE', `Training run '${id}' is served by ${holder} now; retry shortly`)
    }
  }

  /** Another process took the run over: fail what is queued here and free the adapter. */
  private evict(id: string): void {
    const run = this.runs.get(id)
    if (!run) return
    this.runs.delete(id)
    this.opts.limits.releaseMemory(id)
    run.lost = true
    const moved = () =>
      tuftError(
        'TUFT_UNAVAILABLE',
        `Training run '${id}' moved to another server process; submit the operation again`,
      )
    for (const future of run.sequencer.abandon()) void this.opts.futures.fail(future, moved())
    void run.sequencer
      .idle()
      .then(() => run.created)
      .then(() => run.host.training().dropAdapter(id))
      .catch(() => {})
  }

  /** The caller's run record (404 for unknown ids and other users' runs). */
  async getRun(userId: string, id: string): Promise<TrainingRunRecord> {
    const record = await this.findRun(id)
    if (!record || record.owner !== userId) throw tuftError('TUFT_NOT_FOUND', `Unknown training run '${id}'`)
    return record
  }

  /** Any run by id, whoever owns it (callers decide what the requester may see). */
  async findRun(id: string): Promise<TrainingRunRecord | null> {
    return (
      this.runs.get(id)?.record ?? (await this.opts.store.get<TrainingRunRecord>(keys.run(id)))?.value ?? null
    )
  }

  /** The caller's run and its metrics, oldest first: from memory when the run is served here, else the store. */
  async metrics(
    userId: string,
    id: string,
  ): Promise<{ run: TrainingRunRecord; points: readonly MetricPoint[] }> {
    const run = await this.getRun(userId, id)
    const live = this.runs.get(id)
    const points =
      live && this.opts.ownership.holds(id) ? live.history.points : await this.opts.metrics.stored(id)
    return { run, points }
  }

  async listRuns(userId: string): Promise<TrainingRunRecord[]> {
    const all = await this.opts.store.scan<TrainingRunRecord>(keys.runs())
    return all
      .map((e) => this.runs.get(e.doc.value.id)?.record ?? e.doc.value)
      .filter((r) => r.owner === userId)
  }

  /** A run loaded in this process and usable for new operations. */
  private async live(userId: string, id: string): Promise<LiveRun> {
    const record = await this.getRun(userId, id)
    if (record.state === 'failed')
      throw tuftError('TUFT_BAD_REQUEST', `Training run '${id}' failed: ${record.failure}`)
    if (record.state === 'unloaded') throw tuftError('TUFT_BAD_REQUEST', `Training run '${id}' was unloaded`)
    const run = this.runs.get(id)
    if (run && this.opts.ownership.holds(id)) return run
    // The lease lapsed without notice (e.g. the store was unreachable): a peer may hold the run now.
    if (run) this.evict(id)
    return this.adopt(record)
  }

  async getInfo(userId: string, id: string) {
    const record = await this.getRun(userId, id)
    const host = this.opts.models.get(record.baseModel)
    return {
      type: 'get_info' as const,
      model_id: id,
      model_data: {
        arch: host.state === 'ready' ? host.info().arch : null,
        model_name: record.baseModel,
        tokenizer_id: host.tokenizerId,
      },
      is_lora: true,
      lora_rank: record.lora.rank,
      model_name: record.baseModel,
    }
  }

  async unloadModel(userId: string, id: string, otelContext?: unknown): Promise<FutureRef> {
    const run = await this.live(userId, id)
    const future = await this.newFuture(run, 'unload_model', otelContext)
    void run.sequencer.after(() =>
      this.opts.futures.run(future, async () => {
        // Operations still held behind a seq_id gap will never run: fail them rather than leave them pending.
        for (const held of run.sequencer.abandon()) {
          void this.opts.futures.fail(
            held,
            tuftError('TUFT_BAD_REQUEST', `Training run '${id}' was unloaded before this operation ran`),
          )
        }
        await this.setState(run.record, 'unloaded', null)
        await run.host.training().dropAdapter(id)
        this.opts.limits.releaseMemory(id)
        // Readers of an unloaded run's metrics go to the store from now on.
        await run.history.flush()
        this.runs.delete(id)
        this.announceResident(run.host)
        await this.opts.ownership.release(id)
        return { model_id: id, type: 'unload_model' }
      }),
    )
    return { request_id: future, model_id: id }
  }

  // ---- sequenced operations ----

  async forwardBackward(userId: string, body: ForwardBackwardBody, sub: Submission): Promise<FutureRef> {
    const req = body.request
    return this.sequenced(
      userId,
      req.modelId,
      req.seqId,
      req.forwardOnly ? 'forward' : 'forward_backward',
      sub,
      (run) => {
        if (run.host.state !== 'ready')
          throw tuftError('TUFT_UNAVAILABLE', `Model '${run.host.name}' is still loading`)
        const items = toTrainItems(req, run.record.id, {
          vocabSize: run.host.info().vocabSize,
          maxContext: run.host.maxContext(),
          losses: run.host.losses(),
        })
        this.opts.limits.checkTokens(
          userId,
          items.reduce((n, item) => n + item.tokens.length, 0),
        )
        return async (futureId) => {
          const ran = { fused: false }
          const results = await run.host.scheduler.submit(
            userId,
            items,
            this.opts.futures.traceOf(futureId),
            ran,
          )
          let loss = 0
          let tokens = 0
          const outputs = results.map((r, i) => {
            loss += r.loss
            tokens += items[i]!.tokens.length
            const item = items[i]!
            return {
              logprobs: r.logprobs,
              shape: item.k === 1 ? [item.tokens.length] : [item.tokens.length, item.k],
            }
          })
          this.opts.events.emit('usage', {
            userId,
            sessionId: run.record.sessionId,
            modelName: run.host.name,
            kind: 'training_tokens',
            amount: tokens,
          })
          const metrics = { 'loss:sum': loss }
          run.history.record({
            kind: req.forwardOnly ? 'forward' : 'forward_backward',
            step: run.step,
            seq_id: req.seqId,
            metrics,
          })
          // Its gradients count towards the next optim_step, which logs it to be replayed after a crash.
          if (!req.forwardOnly && this.opts.durable.everyStep) {
            if (ran.fused) run.passes = null
            else run.passes?.push(base64(body.bytes))
          }
          return storeFwdBwd(outputs, metrics)
        }
      },
    )
  }

  async optimStep(userId: string, body: OptimStep, sub: Submission): Promise<FutureRef> {
    return this.sequenced(userId, body.model_id, body.seq_id, 'optim_step', sub, (run) => {
      const adam = adamParamsOf(body.adam_params)
      return async (futureId) => {
        const r = await run.host
          .training()
          .optimStep(run.record.id, adam, { requests: [this.opts.futures.traceOf(futureId)] })
        run.step = r.step
        const result = {
          metrics: {
            'grad_norm:mean': r.gradNorm,
            'step:max': r.step,
            'learning_rate:mean': adam.learningRate,
          },
        }
        // The future reports success only once this step is durable.
        const passes = run.passes
        run.passes = []
        if (this.opts.durable.everyStep) {
          const point = { seqId: body.seq_id, futureId, step: r.step, result }
          await this.opts.durable.step(run.record, run.host.training(), point, passes && { passes, adam })
        }
        run.history.record({ kind: 'optim_step', step: r.step, seq_id: body.seq_id, metrics: result.metrics })
        return result
      }
    })
  }

  async saveWeights(userId: string, body: SaveWeightsRequest, sub: Submission): Promise<FutureRef> {
    const name = body.path != null ? checkCheckpointName(body.path) : generatedCheckpointName()
    return this.sequenced(userId, body.model_id, body.seq_id, 'save_weights', sub, (run) => {
      return async (futureId) => {
        const c = await this.opts.checkpoints.save(
          run.record,
          'weights',
          name,
          { ttlSeconds: body.ttl_seconds ?? null, overwrite: body.overwrite, hasOptimizer: true },
          (dir) =>
            run.host.training().saveState(run.record.id, dir, { optimizer: true }, this.step(futureId)),
        )
        const result = { path: formatTinkerPath(c), type: 'save_weights' }
        if (this.opts.durable.enabled) {
          const point = { seqId: body.seq_id, futureId, step: run.step, result }
          await this.opts.durable.commitFrom(run.record, this.opts.checkpoints.absDir(c), point)
        }
        return result
      }
    })
  }

  async loadWeights(userId: string, body: LoadWeightsRequest, sub: Submission): Promise<FutureRef> {
    if (body.model_id === undefined || body.seq_id === undefined) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        'load_weights needs model_id and seq_id (create-via-load addressing is not enabled)',
      )
    }
    return this.sequenced(userId, body.model_id, body.seq_id, 'load_weights', sub, (run) => {
      parseTinkerPath(body.path)
      return async (futureId) => {
        const c = await this.opts.checkpoints.readablePath(userId, body.path)
        const mine = run.record
        const mismatch =
          c.baseModel !== mine.baseModel
            ? `base model ${c.baseModel} ≠ ${mine.baseModel}`
            : c.lora.rank !== mine.lora.rank
              ? `LoRA rank ${c.lora.rank} ≠ ${mine.lora.rank}`
              : c.lora.trainAttn !== mine.lora.trainAttn ||
                  c.lora.trainMlp !== mine.lora.trainMlp ||
                  c.lora.trainUnembed !== mine.lora.trainUnembed
                ? 'different LoRA targets (train_attn/train_mlp/train_unembed)'
                : null
        if (mismatch)
          throw tuftError(
            'TUFT_BAD_REQUEST',
            `Checkpoint ${body.path} does not fit training run ${mine.id}: ${mismatch}`,
          )
        if (body.optimizer && !c.hasOptimizer) {
          throw tuftError(
            'TUFT_BAD_REQUEST',
            `Checkpoint ${body.path} has no optimizer state (sampler checkpoints hold weights only)`,
          )
        }
        await run.host
          .training()
          .loadState(
            mine.id,
            this.opts.checkpoints.absDir(c),
            { optimizer: body.optimizer },
            this.step(futureId),
          )
        // The load discarded the gradients of those passes.
        run.passes = []
        const result = { path: body.path, model_id: mine.id, type: 'load_weights' }
        // A load replaces the state: it is a durable point in either durability mode.
        if (this.opts.durable.enabled) {
          const point = { seqId: body.seq_id!, futureId, step: run.step, result }
          await this.opts.durable.commit(mine, run.host.training(), point)
        }
        return result
      }
    })
  }

  async saveWeightsForSampler(
    userId: string,
    body: SaveWeightsForSamplerRequest,
    sub: Submission,
  ): Promise<FutureRef> {
    if (body.path != null) checkCheckpointName(body.path)
    return this.sequenced(userId, body.model_id, body.seq_id, 'save_weights_for_sampler', sub, (run) => {
      const training = () => run.host.training()
      if (body.path) {
        const name = body.path
        return async (futureId) => {
          const c = await this.opts.checkpoints.save(
            run.record,
            'sampler_weights',
            name,
            { ttlSeconds: body.ttl_seconds ?? null, overwrite: true, hasOptimizer: false },
            (dir) => training().exportAdapter(run.record.id, dir, this.step(futureId)),
          )
          return { path: formatTinkerPath(c), sampling_session_id: null, type: 'save_weights_for_sampler' }
        }
      }
      const seq = body.sampling_session_seq_id
      if (seq === undefined || seq === null) {
        throw tuftError(
          'TUFT_BAD_REQUEST',
          'save_weights_for_sampler needs either path or sampling_session_seq_id',
        )
      }
      return async (futureId) => {
        const o = this.step(futureId)
        const samplerId = await this.opts.samplers.createFromTraining(
          run.record,
          seq,
          async (snapshotId): Promise<LocalAdapter> => {
            if (run.host.samplesTrainingSnapshots()) {
              await training().snapshotAdapter!(run.record.id, snapshotId, o)
              return { kind: 'snapshot', id: snapshotId }
            }
            // The sampling engine cannot see this process's snapshots: hand it PEFT files instead.
            const dir = await this.opts.checkpoints.ephemeralDir(snapshotId)
            await training().exportAdapter(run.record.id, dir, o)
            return { kind: 'peft', id: snapshotId, dir }
          },
          (snapshotId, dir) => training().exportAdapter(snapshotId, dir),
        )
        return { path: null, sampling_session_id: samplerId, type: 'save_weights_for_sampler' }
      }
    })
  }

  /** Reports how many training adapters this process keeps on a model (adapters.resident). */
  private announceResident(host: ModelHost): void {
    let count = 0
    for (const run of this.runs.values()) if (run.host === host && run.record.state === 'ready') count++
    this.opts.events.emit('adapters.resident', { modelName: host.name, count })
  }

  /** Engine-call options naming the request a call serves (telemetry links engine spans to it). */
  private step(futureId: string): StepOptions {
    return { requests: [this.opts.futures.traceOf(futureId)] }
  }

  /**
   * The common path of every seq_id-ordered operation: ownership, duplicate and order checks, then
   * `prepare` (synchronous validation, 400 on bad input) builds the work that runs in seq_id order.
   */
  private async sequenced(
    userId: string,
    modelId: string,
    seqId: number,
    kind: FutureKind,
    sub: Submission,
    prepare: (run: LiveRun) => (futureId: string) => Promise<Json>,
  ): Promise<FutureRef> {
    const run = await this.live(userId, modelId)
    const seq = run.sequencer
    try {
      const duplicate = seq.duplicateOf(seqId)
      if (duplicate !== undefined) return { request_id: duplicate, model_id: modelId }
      seq.check(seqId)
      const work = prepare(run)
      const future = await this.newFuture(run, kind, sub.otelContext)
      seq.submit(seqId, future, async () => {
        await run.created
        await this.opts.futures.run(future, async () => {
          if (run.lost) {
            throw tuftError(
              'TUFT_UNAVAILABLE',
              `Training run '${modelId}' moved to another server process; submit the operation again`,
            )
          }
          if (run.record.state !== 'ready')
            throw tuftError('TUFT_BAD_REQUEST', `Training run '${modelId}' is ${run.record.state}`)
          return work(future)
        })
      })
      run.record.lastRequestAt = Date.now()
      run.record.lastSeqId = Math.max(run.record.lastSeqId ?? 0, seqId)
      run.record.recentSeqs = [...(run.record.recentSeqs ?? []), [seqId, future] as [number, string]].slice(
        -RECENT_SEQS,
      )
      await this.opts.store.put(keys.run(modelId), run.record)
      return { request_id: future, model_id: modelId }
    } catch (err) {
      // A seq_id refused for a user error is consumed (the SDK moves on to the next one); after a
      // retryable refusal (busy, still loading) the client resends the same seq_id.
      if (isTuftError(err) && err.statusCode < 500 && err.statusCode !== 429) seq.skip(seqId)
      throw err
    } finally {
      sub.settle()
    }
  }

  private async newFuture(run: LiveRun, kind: FutureKind, otelContext: unknown): Promise<string> {
    const f = await this.opts.futures.create({
      owner: run.record.owner,
      kind,
      modelId: run.record.id,
      modelName: run.host.name,
      trace: {
        userId: run.record.owner,
        sessionId: run.record.sessionId,
        trainingRunId: run.record.id,
        otelContext,
      },
    })
    return f.id
  }

  private async setState(
    record: TrainingRunRecord,
    state: TrainingRunRecord['state'],
    failure: string | null,
  ): Promise<void> {
    record.state = state
    record.failure = failure
    await this.opts.store.put(keys.run(record.id), record)
  }

  /** Waits for every run's queued operations and their metrics (graceful shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.runs.values()].map((r) => r.sequencer.idle().then(() => r.history.flush())))
  }

  close(): void {
    for (const run of this.runs.values()) run.sequencer.close()
  }
}
