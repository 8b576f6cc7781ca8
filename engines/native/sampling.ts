// SamplingEngine on the native engine: adapters from training snapshots or PEFT directories, and
// requests submitted to the engine's continuous batcher (concurrent calls share decode steps).
import type {
  AdapterRef,
  EngineHealth,
  EngineInfo,
  SampleJob,
  SampleResult,
  SamplingEngine,
} from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import { localDir } from '../../core/staging.js'
import { call, type SharedEngine } from './shared.js'

const encoder = new TextEncoder()

export class NativeSamplingEngine implements SamplingEngine {
  readonly info: EngineInfo
  private closed = false

  constructor(private readonly shared: SharedEngine) {
    this.info = shared.info
  }

  private get native() {
    if (this.closed) throw tuftError('TUFT_UNAVAILABLE', 'the sampling engine was closed')
    return this.shared.native
  }

  /** Snapshots already live in this engine (training and sampling share it); PEFT dirs are imported. */
  async loadAdapter(ref: AdapterRef): Promise<void> {
    if (ref.kind === 'peft') await call(() => this.native.importPeft(ref.id, localDir(ref.uri)))
  }

  async unloadAdapter(ref: AdapterRef): Promise<void> {
    await call(() => this.native.dropAdapter(ref.id))
  }

  async sample(job: SampleJob): Promise<SampleResult> {
    if (job.signal?.aborted) throw tuftError('TUFT_UNAVAILABLE', 'the sample request was cancelled')
    if (job.stopStrings.length > 0) await this.shared.ensureTokenBytes()
    const native = this.native
    const requestId = this.shared.requestId()
    const onAbort = () => {
      void native.cancelSample(requestId).catch(() => undefined)
    }
    job.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const r = await call(() =>
        native.sample(requestId, {
          adapterId: job.adapter?.id ?? null,
          prompt: job.prompt,
          numSamples: job.numSamples,
          maxTokens: job.maxTokens,
          temperature: job.temperature,
          topK: job.topK,
          topP: job.topP,
          seed: BigInt.asUintN(64, job.seed),
          stopTokens: Int32Array.from(job.stopTokens),
          stopStrings: job.stopStrings.map((s) => encoder.encode(s)),
          promptLogprobs: job.promptLogprobs,
          topkPromptLogprobs: job.topkPromptLogprobs,
        }),
      )
      const result: SampleResult = { sequences: r.sequences }
      if (r.promptLogprobs !== undefined) result.promptLogprobs = r.promptLogprobs
      if (r.topkIds !== undefined && r.topkLogprobs !== undefined && r.topkK !== undefined) {
        result.topkPromptLogprobs = {
          tokenIds: r.topkIds,
          logprobs: r.topkLogprobs,
          k: r.topkK,
          promptLength: r.promptLength,
        }
      }
      return result
    } finally {
      job.signal?.removeEventListener('abort', onAbort)
    }
  }

  async health(): Promise<EngineHealth> {
    return this.closed ? { ok: false, message: 'closed' } : { ok: true }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.shared.release()
  }
}
