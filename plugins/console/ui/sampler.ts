// Sampling for the playground through the server's public APIs: the OpenAI-compatible completions API
// when the server offers one, else the Tinker sampling API (create_session, create_sampling_session,
// asample, retrieve_future), with a session heartbeat while the playground is open.

import { ApiError, api, request } from './api.js'

export interface SampleParams {
  max_tokens: number
  temperature: number
  top_p: number
  top_k: number
  seed: number | null
  stop: string[]
}

/** A base model by name, or a sampler checkpoint by its tinker:// path. */
export type ModelChoice = { base_model: string } | { model_path: string }

export interface Completion {
  tokens: number[]
  logprobs: number[]
  stopReason: string
  via: 'OpenAI-compatible API' | 'Tinker sampling API'
}

export interface Sampler {
  sample(model: ModelChoice, prompt: number[], params: SampleParams): Promise<Completion>
  close(): void
}

/** Where the OpenAI-compatible API is mounted, if anywhere (a 404 at both places means: not offered). */
const OPENAI_BASES = ['/oai/api/v1', '/v1']

export async function openSampler(): Promise<Sampler> {
  for (const base of OPENAI_BASES) {
    try {
      await request(`${base}/models`)
      return openAiSampler(base)
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err
    }
  }
  return new TinkerSampler()
}

function openAiSampler(base: string): Sampler {
  return {
    async sample(model, prompt, params) {
      type Choice = { token_ids?: number[]; logprobs?: { token_logprobs?: number[] }; finish_reason?: string }
      const res = await api<{ choices: Choice[] }>(`${base}/completions`, {
        method: 'POST',
        json: {
          model: 'base_model' in model ? model.base_model : model.model_path,
          prompt,
          max_tokens: params.max_tokens,
          temperature: params.temperature,
          top_p: params.top_p,
          top_k: params.top_k,
          ...(params.seed === null ? {} : { seed: params.seed }),
          ...(params.stop.length > 0 ? { stop: params.stop } : {}),
          logprobs: 0,
          return_token_ids: true,
        },
      })
      const choice = res.choices[0]
      return {
        tokens: choice?.token_ids ?? [],
        logprobs: choice?.logprobs?.token_logprobs ?? [],
        stopReason: choice?.finish_reason === 'length' ? 'length' : 'stop',
        via: 'OpenAI-compatible API',
      }
    },
    close() {},
  }
}

const HEARTBEAT_MS = 60_000

class TinkerSampler implements Sampler {
  private session: Promise<string> | null = null
  private readonly samplers = new Map<string, { id: Promise<string>; seq: number }>()
  private nextSamplerSeq = 0
  private heartbeat: ReturnType<typeof setInterval> | undefined

  async sample(model: ModelChoice, prompt: number[], params: SampleParams): Promise<Completion> {
    const sampler = this.samplerFor(model)
    const { request_id } = await api<{ request_id: string }>('/api/v1/asample', {
      method: 'POST',
      json: {
        sampling_session_id: await sampler.id,
        seq_id: sampler.seq++,
        num_samples: 1,
        prompt: { chunks: [{ type: 'encoded_text', tokens: prompt }] },
        sampling_params: {
          max_tokens: params.max_tokens,
          temperature: params.temperature,
          top_p: params.top_p,
          top_k: params.top_k,
          seed: params.seed,
          stop: params.stop.length > 0 ? params.stop : null,
        },
      },
    })
    type Sequence = { tokens: number[]; logprobs: number[]; stop_reason: string }
    for (;;) {
      const r = await api<{ type?: string; sequences?: Sequence[]; error?: string }>(
        '/api/v1/retrieve_future',
        {
          method: 'POST',
          json: { request_id },
        },
      )
      if (r.type === 'try_again') continue
      if (r.error !== undefined) throw new Error(r.error)
      const s = r.sequences?.[0]
      return {
        tokens: s?.tokens ?? [],
        logprobs: s?.logprobs ?? [],
        stopReason: s?.stop_reason ?? 'stop',
        via: 'Tinker sampling API',
      }
    }
  }

  close(): void {
    clearInterval(this.heartbeat)
  }

  private samplerFor(model: ModelChoice): { id: Promise<string>; seq: number } {
    const key = JSON.stringify(model)
    let sampler = this.samplers.get(key)
    if (!sampler) {
      const seqId = this.nextSamplerSeq++
      const id = this.sessionId().then(async (session_id) => {
        const r = await api<{ sampling_session_id: string }>('/api/v1/create_sampling_session', {
          method: 'POST',
          json: { session_id, sampling_session_seq_id: seqId, ...model },
        })
        return r.sampling_session_id
      })
      // A failed creation (a deleted checkpoint, say) is tried again next time.
      id.catch(() => this.samplers.delete(key))
      sampler = { id, seq: 0 }
      this.samplers.set(key, sampler)
    }
    return sampler
  }

  private sessionId(): Promise<string> {
    if (!this.session) {
      this.session = api<{ session_id: string }>('/api/v1/create_session', {
        method: 'POST',
        json: { tags: ['console'], user_metadata: { client: 'tuft console' }, sdk_version: 'tuft-console' },
      }).then((r) => r.session_id)
      this.session.catch(() => {
        this.session = null
      })
      clearInterval(this.heartbeat)
      this.heartbeat = setInterval(async () => {
        const session_id = await this.session
        if (session_id)
          await api('/api/v1/session_heartbeat', { method: 'POST', json: { session_id } }).catch(() => {})
      }, HEARTBEAT_MS)
    }
    return this.session
  }
}
