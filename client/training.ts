// TrainingClient: one training run (spec §3.12-3.17). Every operation takes the next seq_id at call
// time and submissions go out strictly in that order, so calls may be issued without awaiting each other.

import { decodeForwardBackwardOutput, type ForwardBackwardOutput } from '../core/wire/fwdbwd-output.js'
import { encodeForwardBackwardRequest } from '../core/wire/fwdbwd-request.js'
import {
  type AdamParams,
  GetInfoResponse,
  LoadWeightsResult,
  OptimStepResult,
  SaveWeightsForSamplerResult,
  SaveWeightsResult,
  UntypedAPIFuture,
  withAdamDefaults,
} from '../core/wire/schemas.js'
import { chunkData, mergeChunkResults } from './chunks.js'
import type { Datum } from './datum.js'
import { awaitFuture, type RequestType } from './futures.js'
import type { CallOptions } from './http.js'
import { SamplingClient } from './sampling.js'
import type { Session } from './session.js'
import { checked } from './shape.js'

export type LossFnName = 'cross_entropy' | 'importance_sampling' | 'ppo' | 'cispo' | 'dro'

export type ForwardBackwardResult = ForwardBackwardOutput

const DEFAULT_CHUNK_LEN = 1024
const DEFAULT_CHUNK_BYTES = 5_000_000

export class TrainingClient {
  private nextSeq = 1
  private submissions: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly session: Session,
    readonly modelId: string,
  ) {}

  /** Takes a seq_id now; the POST leaves once every earlier submission has its request id. */
  private submit(path: string, options: (seqId: number) => CallOptions): Promise<UntypedAPIFuture> {
    const seqId = this.nextSeq++
    const submitted = this.submissions.then(async () =>
      checked(UntypedAPIFuture, await this.session.http.json('POST', path, options(seqId)), path),
    )
    // A failed submission must not block the ones after it (the server tolerates seq_id gaps).
    this.submissions = submitted.catch(() => undefined)
    return submitted
  }

  private submitJson(path: string, type: string, body: Record<string, unknown>) {
    return this.submit(path, (seqId) => ({ json: { ...body, model_id: this.modelId, seq_id: seqId, type } }))
  }

  private async result(future: Promise<UntypedAPIFuture>, type: RequestType): Promise<unknown> {
    return awaitFuture(this.session.http, await future, type)
  }

  private async run(
    data: readonly Datum[],
    lossFn: LossFnName,
    lossFnConfig: Record<string, number>,
    forwardOnly: boolean,
  ): Promise<ForwardBackwardResult> {
    if (data.length === 0) throw new RangeError('forward/forward_backward needs at least one datum')
    const cfg = this.session.config
    const chunks = chunkData(
      data,
      cfg.fwdbwd_max_chunk_len ?? DEFAULT_CHUNK_LEN,
      cfg.fwdbwd_max_chunk_bytes_count ?? DEFAULT_CHUNK_BYTES,
    )
    const futures = chunks.map((chunk) =>
      this.submit('/api/v1/forward_backward', (seqId) => ({
        body: encodeForwardBackwardRequest({
          modelId: this.modelId,
          seqId,
          lossFn,
          lossFnConfig,
          forwardOnly,
          data: chunk,
        }),
        contentType: 'application/x-protobuf',
      })),
    )
    const type = forwardOnly ? 'Forward' : 'ForwardBackward'
    const results = await Promise.all(
      futures.map(async (f) => decodeForwardBackwardOutput((await this.result(f, type)) as Buffer)),
    )
    return mergeChunkResults(results)
  }

  /** Forward and backward pass: gradients accumulate until optimStep. */
  forwardBackward(data: readonly Datum[], lossFn: LossFnName, lossFnConfig: Record<string, number> = {}) {
    return this.run(data, lossFn, lossFnConfig, false)
  }

  /** Forward pass only: outputs and loss, no gradient. */
  forward(data: readonly Datum[], lossFn: LossFnName, lossFnConfig: Record<string, number> = {}) {
    return this.run(data, lossFn, lossFnConfig, true)
  }

  async optimStep(adam: Partial<AdamParams> = {}): Promise<OptimStepResult> {
    const future = this.submitJson('/api/v1/optim_step', 'optim_step', {
      adam_params: withAdamDefaults(adam),
    })
    return checked(OptimStepResult, await this.result(future, 'OptimStep'), 'optim_step result')
  }

  /** Training checkpoint (weights + optimizer state) named `name`; returns its tinker:// path. */
  async saveState(name: string, opts: { ttlSeconds?: number; overwrite?: boolean } = {}): Promise<string> {
    const future = this.submitJson('/api/v1/save_weights', 'save_weights', {
      path: name,
      overwrite: opts.overwrite ?? false,
      ...(opts.ttlSeconds === undefined ? {} : { ttl_seconds: opts.ttlSeconds }),
    })
    return checked(SaveWeightsResult, await this.result(future, 'SaveWeights'), 'save_weights result').path
  }

  private async load(path: string, optimizer: boolean): Promise<LoadWeightsResult> {
    const future = this.submitJson('/api/v1/load_weights', 'load_weights', { path, optimizer })
    return checked(LoadWeightsResult, await this.result(future, 'LoadWeights'), 'load_weights result')
  }

  /** Loads weights only; the optimizer state starts fresh. */
  loadState(path: string) {
    return this.load(path, false)
  }

  loadStateWithOptimizer(path: string) {
    return this.load(path, true)
  }

  /** Sampler checkpoint (weights only) named `name`; returns its tinker:// path. */
  async saveWeightsForSampler(name: string, opts: { ttlSeconds?: number } = {}): Promise<string> {
    const future = this.submitJson('/api/v1/save_weights_for_sampler', 'save_weights_for_sampler', {
      path: name,
      ...(opts.ttlSeconds === undefined ? {} : { ttl_seconds: opts.ttlSeconds }),
    })
    const res = checked(
      SaveWeightsForSamplerResult,
      await this.result(future, 'SaveWeightsForSampler'),
      'result',
    )
    if (!res.path) throw new TypeError('save_weights_for_sampler answered without a path')
    return res.path
  }

  /** Snapshots the current weights into a new sampler (no checkpoint is listed). */
  async saveWeightsAndGetSamplingClient(): Promise<SamplingClient> {
    const future = this.submitJson('/api/v1/save_weights_for_sampler', 'save_weights_for_sampler', {
      sampling_session_seq_id: this.session.nextSamplingSeq(),
    })
    const res = checked(
      SaveWeightsForSamplerResult,
      await this.result(future, 'SaveWeightsForSampler'),
      'result',
    )
    if (!res.sampling_session_id)
      throw new TypeError('save_weights_for_sampler answered without a sampler id')
    return new SamplingClient(this.session, res.sampling_session_id)
  }

  async createSamplingClient(modelPath: string): Promise<SamplingClient> {
    return new SamplingClient(this.session, await this.session.createSamplingSession({ modelPath }))
  }

  async getInfo(): Promise<GetInfoResponse> {
    const body = await this.session.http.json('POST', '/api/v1/get_info', {
      json: { model_id: this.modelId, type: 'get_info' },
    })
    return checked(GetInfoResponse, body, 'get_info')
  }
}
