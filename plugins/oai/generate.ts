// Generation for /completions and /chat/completions: each prompt becomes one sample job on the model's
// sampling engine through SamplingService.sampleNow (the same bound, adapter residency and metering as
// Tinker's asample), and each sampled sequence is finished the way vLLM finishes it: text without the
// stop string or stop token (unless include_stop_str_in_output), finish_reason and stop_reason.

import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SampledSequence, SampleResult } from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import { newRequestId } from '../../core/ids.js'
import { buildSampleJob } from '../../core/services/sample-job.js'
import { userOf } from '../auth.js'
import type { ModelText } from '../model-text.js'
import { traceContextOf } from '../telemetry/http.js'
import type { Target } from './targets.js'

/** Sampling fields shared by completions and chat, as vLLM names them. */
export interface GenerationOptions {
  n: number
  /** null: the room left in the context. */
  maxTokens: number | null
  temperature: number
  topP: number
  topK: number
  seed: number | null
  stop: string[]
  stopTokenIds: number[]
  ignoreEos: boolean
  includeStopStrInOutput: boolean
  skipSpecialTokens: boolean
  /** Top alternatives per prompt position (vLLM's prompt_logprobs); null: none. */
  promptLogprobs: number | null
}

export interface Finished {
  tokens: number[]
  logprobs: number[]
  text: string
  finishReason: 'stop' | 'length'
  /** The stop string or stop token id that ended generation; null for EOS and length. */
  stopReason: string | number | null
}

export interface PromptResult {
  prompt: number[]
  result: SampleResult
  sequences: Finished[]
}

/** vLLM's message for a request beyond the context, so clients see the same words from both. */
function contextError(context: number, prompt: number, maxTokens: number) {
  return tuftError(
    'TUFT_BAD_REQUEST',
    `This model's maximum context length is ${context} tokens. However, you requested ${prompt + maxTokens} tokens (${prompt} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
  )
}

/** Samples every prompt (concurrently) and finishes each sequence. */
export async function generate(
  app: FastifyInstance,
  request: FastifyRequest,
  target: Target,
  text: ModelText,
  prompts: number[][],
  o: GenerationOptions,
): Promise<PromptResult[]> {
  const { host } = target
  await host.whenReady()
  const limits = { vocabSize: host.info().vocabSize, maxContext: host.maxContext() }
  const userId = userOf(request)
  const abort = new AbortController()
  // A client that hangs up stops its work (the engine drops aborted jobs).
  const onClose = () => abort.abort()
  request.raw.once('close', onClose)
  const eos = o.ignoreEos ? [] : text.eosIds
  try {
    return await Promise.all(
      prompts.map(async (prompt) => {
        const room = limits.maxContext - prompt.length
        const maxTokens = o.maxTokens ?? room
        if (maxTokens > room) throw contextError(limits.maxContext, prompt.length, maxTokens)
        const job = buildSampleJob(
          {
            prompt,
            numSamples: o.n,
            maxTokens,
            temperature: o.temperature,
            topK: o.topK,
            topP: o.topP,
            seed: o.seed,
            stopStrings: o.stop,
            stopTokens: [...new Set([...o.stopTokenIds, ...eos])],
            promptLogprobs: o.promptLogprobs !== null,
            topkPromptLogprobs: o.promptLogprobs ?? 0,
          },
          limits,
        )
        const trace = { requestId: newRequestId(), userId, otelContext: traceContextOf(request) }
        const result = await app.tuft.sampling.sampleNow({
          userId,
          sessionId: null,
          host,
          job,
          ref: target.ref,
          trace,
          signal: abort.signal,
        })
        const sequences = await Promise.all(result.sequences.map((s) => finish(s, text, o, eos)))
        return { prompt, result, sequences }
      }),
    )
  } finally {
    request.raw.off('close', onClose)
  }
}

/** Text, finish_reason and stop_reason of one sampled sequence, as vLLM reports them. */
async function finish(
  seq: SampledSequence,
  text: ModelText,
  o: GenerationOptions,
  eos: number[],
): Promise<Finished> {
  const tokens = Array.from(seq.tokens)
  const base = { tokens, logprobs: Array.from(seq.logprobs) }
  const skip = o.skipSpecialTokens
  if (seq.stopReason === 'length') {
    return { ...base, text: await text.decode(tokens, skip), finishReason: 'length', stopReason: null }
  }
  const last = tokens[tokens.length - 1]!
  if (o.stopTokenIds.includes(last) || eos.includes(last)) {
    const shown = o.includeStopStrInOutput ? tokens : tokens.slice(0, -1)
    const stopReason = o.stopTokenIds.includes(last) ? last : null
    return { ...base, text: await text.decode(shown, skip), finishReason: 'stop', stopReason }
  }
  // A stop string: the engine stopped on the token that completed it; the text ends where it starts.
  const full = await text.decode(tokens, skip)
  let at = -1
  let hit = ''
  for (const s of o.stop) {
    const i = full.indexOf(s)
    if (i >= 0 && (at < 0 || i < at)) {
      at = i
      hit = s
    }
  }
  if (at < 0) return { ...base, text: full, finishReason: 'stop', stopReason: null }
  const end = o.includeStopStrInOutput ? at + hit.length : at
  return { ...base, text: full.slice(0, end), finishReason: 'stop', stopReason: hit }
}

/** vLLM clamps reported logprobs so that -inf stays JSON. */
export const clampLogprob = (lp: number) => Math.max(lp, -9999)

/**
 * vLLM's prompt_logprobs: null for the first position, then per position a map from token id to
 * {logprob, rank, decoded_token} holding the prompt token and the top alternatives (best first).
 * A prompt token outside the top alternatives has no known rank (null).
 */
export async function promptLogprobsOf(
  r: PromptResult,
  text: ModelText,
): Promise<(Record<string, { logprob: number; rank: number | null; decoded_token: string }> | null)[]> {
  const lps = r.result.promptLogprobs
  const topk = r.result.topkPromptLogprobs
  const ids = [...new Set([...r.prompt, ...(topk?.tokenIds ?? [])])]
  const pieces = await text.pieces(ids)
  const piece = new Map(ids.map((id, i) => [id, pieces[i]!]))
  return r.prompt.map((id, i) => {
    if (i === 0 || lps === undefined) return null
    const entry: Record<string, { logprob: number; rank: number | null; decoded_token: string }> = {}
    const k = topk?.k ?? 0
    const row = (j: number) => ({ id: topk!.tokenIds[i * k + j]!, lp: topk!.logprobs[i * k + j]! })
    let rank: number | null = null
    for (let j = 0; j < k; j++) if (row(j).id === id) rank = j + 1
    entry[id] = { logprob: lps[i]!, rank, decoded_token: piece.get(id)! }
    for (let j = 0; j < k; j++) {
      const { id: alt, lp } = row(j)
      entry[alt] ??= { logprob: lp, rank: j + 1, decoded_token: piece.get(alt)! }
    }
    return entry
  })
}

export function usageOf(results: PromptResult[]) {
  const prompt = results.reduce((n, r) => n + r.prompt.length, 0)
  const completion = results.reduce((n, r) => n + r.sequences.reduce((m, s) => m + s.tokens.length, 0), 0)
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}
