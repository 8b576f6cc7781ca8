// Sample requests (spec §3.19, §4.7, §7.5): admitted fairly between users against a per-model bound
// (429 above a user's share of it, SampleAdmission), de-duplicated on (sampler, seq_id), run concurrently
// on the sampling engine with the sampler's adapter (SamplerStore), and dropped when their session
// expires or their client stops polling.

import type { Logger } from 'pino'
import type { RequestTrace, SampleJob, SampleResult } from '../engine.js'
import { tuftError } from '../errors.js'
import type { EventBus } from '../events.js'
import { sampleSequenceIds } from '../ids.js'
import type { SampleFuture, SampleRequest } from '../wire/schemas.js'
import type { LocalAdapter } from './adapter-cache.js'
import type { FutureService } from './futures.js'
import type { LimitsService } from './limits.js'
import type { ModelHost, ModelHosts } from './models.js'
import { storeSample } from './results.js'
import { type Place, SampleAdmission } from './sample-admission.js'
import { toSampleJob } from './sample-job.js'
import type { SamplerStore } from './samplers.js'
import type { SessionService } from './sessions.js'

export interface SamplingServiceOptions {
  futures: FutureService
  sessions: SessionService
  samplers: SamplerStore
  models: ModelHosts
  events: EventBus
  log: Logger
  /** Queued + running sample requests allowed per model, shared between the users holding some. */
  queueLimit: number
  /** Samples per model decoding on the engine at once; more wait in per-user queues (round-robin). */
  runningLimit: number
  /** Decides max_sampling_requests_queued and max_tokens_per_request. */
  limits: LimitsService
  /** A sample request nobody has polled for this long is dropped (its client went away). */
  abandonAfterMs?: number
}

/** The SDK polls back to back, each poll under 45 s: a minute without one means the client is gone. */
const ABANDON_AFTER_MS = 60_000

/** One sample job to run on a model, with whom it serves and bills. */
export interface SampleRun {
  userId: string
  /** The client session usage is billed to; null outside a Tinker session (OpenAI-compatible API). */
  sessionId: string | null
  host: ModelHost
  job: SampleJob
  /** The adapter to sample with; null for the bare base model. */
  ref: LocalAdapter | null
  trace: RequestTrace
  /** Aborted when the client went away. */
  signal?: AbortSignal
}

interface Pending {
  sessionId: string
  abort: AbortController
  /** Settles when the request's future is finished. */
  done: Promise<void>
}

export class SamplingService {
  private readonly admissions = new Map<string, SampleAdmission>()
  private readonly pending = new Map<string, Pending>()
  private readonly seen = new Map<string, string>()
  private sweeper: NodeJS.Timeout | null = null

  constructor(private readonly opts: SamplingServiceOptions) {
    opts.sessions.onExpire((sessionId) => this.dropSession(sessionId))
  }

  /** Periodically drops requests whose client stopped polling. */
  startSweeper(intervalMs: number): void {
    this.sweeper = setInterval(() => this.dropAbandoned(), intervalMs)
    this.sweeper.unref()
  }

  /** Aborts running or queued requests nobody polls any more; returns how many. */
  dropAbandoned(now = Date.now()): number {
    let dropped = 0
    const grace = this.opts.abandonAfterMs ?? ABANDON_AFTER_MS
    for (const [futureId, p] of this.pending) {
      if (!p.abort.signal.aborted && this.opts.futures.isAbandoned(futureId, grace, now)) {
        p.abort.abort()
        dropped++
        this.opts.log.info({ request: futureId }, 'sample request dropped: its client stopped polling')
      }
    }
    return dropped
  }

  /** Stops the sweeper and drops every request still running, resolving once their futures settled. */
  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper)
    this.sweeper = null
    const pending = [...this.pending.values()]
    for (const p of pending) p.abort.abort()
    await Promise.all(pending.map((p) => p.done))
  }

  async sample(userId: string, body: SampleRequest, otelContext?: unknown): Promise<SampleFuture> {
    if (!body.sampling_session_id) {
      throw tuftError(
        'TUFT_BAD_REQUEST',
        'asample needs sampling_session_id (create one with create_sampling_session)',
      )
    }
    const sampler = await this.opts.samplers.getSampler(userId, body.sampling_session_id)
    if (sampler.closed)
      throw tuftError('TUFT_NOT_FOUND', `Sampler '${sampler.id}' belongs to an expired session`)
    const dedupKey = body.seq_id === undefined || body.seq_id === null ? null : `${sampler.id}#${body.seq_id}`
    const prior = dedupKey ? this.seen.get(dedupKey) : undefined
    if (prior) return { request_id: prior, sample_sequence_ids: sampleSequenceIds(prior, body.num_samples) }
    const host = this.opts.models.get(sampler.baseModel)
    if (host.state !== 'ready') throw tuftError('TUFT_UNAVAILABLE', `Model '${host.name}' is still loading`)
    const job = toSampleJob(body, { vocabSize: host.info().vocabSize, maxContext: host.maxContext() })
    const ref = this.opts.samplers.adapterRef(sampler)
    // Take the place before awaiting the store, so concurrent submissions cannot all pass the bound.
    const place = this.enter(userId, host, job)
    const future = await this.opts.futures
      .create({
        owner: userId,
        kind: 'sample',
        modelId: null,
        modelName: host.name,
        trace: { userId, sessionId: sampler.sessionId, samplingSessionId: sampler.id, otelContext },
      })
      .catch((err: unknown) => {
        place.leave()
        throw err
      })
    if (dedupKey) this.remember(dedupKey, future.id)
    const abort = new AbortController()
    const done = this.opts.futures
      .run(future.id, async () => {
        const trace = this.opts.futures.traceOf(future.id)
        const run = { userId, sessionId: sampler.sessionId, host, job, ref, trace, signal: abort.signal }
        return storeSample(await this.execute(run, place))
      })
      .finally(() => {
        this.pending.delete(future.id)
        place.leave()
      })
    this.pending.set(future.id, { sessionId: sampler.sessionId, abort, done })
    return { request_id: future.id, sample_sequence_ids: sampleSequenceIds(future.id, body.num_samples) }
  }

  /**
   * Runs one sample job now and answers its result (the OpenAI-compatible API): the same fair admission
   * (429 above the user's share), adapter residency and usage metering as asample, without a future.
   */
  async sampleNow(run: SampleRun): Promise<SampleResult> {
    if (run.host.state !== 'ready')
      throw tuftError('TUFT_UNAVAILABLE', `Model '${run.host.name}' is still loading`)
    const place = this.enter(run.userId, run.host, run.job)
    try {
      return await this.execute(run, place)
    } finally {
      place.leave()
    }
  }

  /**
   * Takes a place on the model for the user and one of the user's sampling slots (429 above their share
   * of the model's bound or their max_sampling_requests_queued, 400 for a job over their
   * max_tokens_per_request); `leave` gives both back.
   */
  private enter(userId: string, host: ModelHost, job: SampleJob): Place {
    const { limits } = this.opts
    limits.checkTokens(userId, job.prompt.length + job.numSamples * job.maxTokens)
    const leaveUser = limits.enter(userId, 'max_sampling_requests_queued')
    let place: Place
    try {
      place = this.admission(host).enter(userId, job.numSamples)
    } catch (err) {
      leaveUser()
      throw err
    }
    let left = false
    return {
      start: (signal) => place.start(signal),
      leave: () => {
        if (left) return
        left = true
        leaveUser()
        place.leave()
      },
    }
  }

  /** The model's fair admission, made on first use. */
  private admission(host: ModelHost): SampleAdmission {
    let admission = this.admissions.get(host.name)
    if (!admission) {
      admission = new SampleAdmission({
        modelName: host.name,
        queueLimit: this.opts.queueLimit,
        runningLimit: this.opts.runningLimit,
        onDepth: (depth) =>
          this.opts.events.emit('queue.depth', { modelName: host.name, kind: 'sampling', depth }),
      })
      this.admissions.set(host.name, admission)
    }
    return admission
  }

  /** Waits for the request's turn, makes the adapter resident, samples, and meters what was consumed. */
  private async execute(run: SampleRun, place: Place): Promise<SampleResult> {
    const { host, job, ref, signal } = run
    const engine = host.sampling()
    const dropped = () => tuftError('TUFT_BAD_REQUEST', 'Sample request dropped: its client went away')
    await place.start(signal).catch(() => {
      throw dropped()
    })
    const pinned = ref ? await this.opts.samplers.acquire(host, ref) : null
    const release = () => pinned?.release()
    const result = await (async () => {
      if (signal?.aborted) throw dropped()
      const adapter = pinned?.ref ?? null
      return engine.sample({ ...job, adapter, ...(signal ? { signal } : {}) }, { requests: [run.trace] })
    })()
      .catch((err: unknown) => {
        // The engine stops aborted jobs with its own error; report why it was aborted.
        throw signal?.aborted ? dropped() : err
      })
      .finally(() => {
        release()
        // The engine's share goes to the next request now, not once the result is stored.
        place.leave()
      })
    const sampled = result.sequences.reduce((n, s) => n + s.tokens.length, 0)
    const billed = {
      userId: run.userId,
      modelName: host.name,
      ...(run.sessionId ? { sessionId: run.sessionId } : {}),
    }
    this.opts.events.emit('usage', { ...billed, kind: 'prefill_tokens', amount: job.prompt.length })
    this.opts.events.emit('usage', { ...billed, kind: 'sampled_tokens', amount: sampled })
    return result
  }

  /** Aborts the queued and running requests of a session whose client went away. */
  dropSession(sessionId: string): void {
    for (const p of this.pending.values()) if (p.sessionId === sessionId) p.abort.abort()
  }

  private remember(key: string, futureId: string): void {
    this.seen.set(key, futureId)
    if (this.seen.size > 100_000) this.seen.delete(this.seen.keys().next().value!)
  }
}
