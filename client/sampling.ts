// SamplingClient: sampling and prompt logprobs from one sampler (spec §3.19-3.20). A 429 on submission
// backs off and resends the same seq_id; a lost sample (410, connection failure) is resubmitted with a
// new seq_id, a bounded number of times (spec §1.8 Layer D).

import { setTimeout as sleep } from 'node:timers/promises'
import { decodeSampleResponse, type SampleResponseView } from '../core/wire/sample-response.js'
import {
  type ModelInput,
  type SampleFuture,
  SampleFuture as SampleFutureSchema,
  SamplerResponse,
  type SamplingParams,
} from '../core/wire/schemas.js'
import { APIConnectionError, APIStatusError, FutureExpiredError, ResponseFormatError } from './errors.js'
import { awaitFuture } from './futures.js'
import { backoffMs, isRetryableStatus, parseBody, retryAfterMs } from './http.js'
import type { Session } from './session.js'
import { checked } from './shape.js'

/** Token ids, or a full ModelInput with typed chunks. */
export type SamplePrompt = ArrayLike<number> | ModelInput

export interface SampleOptions {
  promptLogprobs?: boolean
  topkPromptLogprobs?: number
}

const BACKPRESSURE_DELAY_MS = 1_000

function toModelInput(prompt: SamplePrompt): ModelInput {
  if ('chunks' in prompt) return prompt
  return { chunks: [{ type: 'encoded_text', tokens: Array.from(prompt) }] }
}

/** Stamps the submission's ids on the sequences, in order, as SDK ≥ 0.26 does; a count mismatch is an error. */
function withSequenceIds(view: SampleResponseView, ids: string[]): SampleResponseView {
  if (ids.length !== view.sequences.length) {
    throw new ResponseFormatError(
      `asample promised ${ids.length} sequence ids for ${view.sequences.length} sequences`,
    )
  }
  return { ...view, sequences: view.sequences.map((s, i) => ({ ...s, sequenceId: ids[i]! })) }
}

export class SamplingClient {
  private nextSeq = 0

  constructor(
    private readonly session: Session,
    readonly samplerId: string,
  ) {}

  private async submit(body: Record<string, unknown>): Promise<SampleFuture> {
    const http = this.session.http
    const seqId = this.nextSeq++
    for (let attempt = 0; ; attempt++) {
      const res = await http.call('POST', '/api/v1/asample', {
        json: { ...body, sampling_session_id: this.samplerId, seq_id: seqId, type: 'sample' },
        headers: { 'X-Tinker-Sampling-Backpressure': '1' },
        retries: 0,
        anyStatus: true,
      })
      if (res.status < 300) return checked(SampleFutureSchema, parseBody(res), 'asample')
      if (!isRetryableStatus(res.status) || attempt >= http.retry.maxRetries) {
        throw new APIStatusError(res.status, parseBody(res), 'POST /api/v1/asample')
      }
      const delay = res.status === 429 ? BACKPRESSURE_DELAY_MS : backoffMs(attempt, http.retry)
      await sleep(retryAfterMs(res.headers) ?? delay)
    }
  }

  /** Draws `numSamples` independent continuations of `prompt`. */
  async sample(
    prompt: SamplePrompt,
    numSamples: number,
    samplingParams: Partial<SamplingParams> = {},
    opts: SampleOptions = {},
  ): Promise<SampleResponseView> {
    const body = {
      num_samples: numSamples,
      prompt: toModelInput(prompt),
      sampling_params: { temperature: 1, top_k: -1, top_p: 1, ...samplingParams },
      prompt_logprobs: opts.promptLogprobs ?? false,
      topk_prompt_logprobs: opts.topkPromptLogprobs ?? 0,
    }
    const http = this.session.http
    for (let attempt = 0; ; attempt++) {
      try {
        const future = await this.submit(body)
        const view = decodeSampleResponse((await awaitFuture(http, future, 'Sample')) as Buffer)
        return withSequenceIds(view, future.sample_sequence_ids)
      } catch (err) {
        const lost = err instanceof FutureExpiredError || err instanceof APIConnectionError
        if (!lost || attempt >= http.retry.sampleRetries) throw err
        await sleep(backoffMs(attempt, http.retry))
      }
    }
  }

  /** log p(prompt[i] | prompt[..i]) for every position; entry 0 is null. */
  async computeLogprobs(prompt: SamplePrompt): Promise<Array<number | null>> {
    const res = await this.sample(
      prompt,
      1,
      { max_tokens: 1, temperature: 1, top_k: -1, top_p: 1 },
      {
        promptLogprobs: true,
      },
    )
    if (!res.promptLogprobs) throw new ResponseFormatError('asample answered without prompt_logprobs')
    return res.promptLogprobs
  }

  async getSampler(): Promise<SamplerResponse> {
    const body = await this.session.http.json('GET', `/api/v1/samplers/${this.samplerId}`)
    return checked(SamplerResponse, body, 'samplers')
  }

  async getBaseModel(): Promise<string> {
    return (await this.getSampler()).base_model
  }
}
