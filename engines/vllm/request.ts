// Tinker sampling in vLLM's terms (vLLM 0.24 `/v1/completions`, field names checked against
// vllm/entrypoints/openai/completion/protocol.py): the request for a SampleJob, and the SampleResult
// read from the answer — tokens from `token_ids`, logprobs from `logprobs.token_logprobs`, prompt logprobs
// and the top-K alternatives from the per-position `prompt_logprobs` maps, by token id and rank.

import type { SampleJob, SampleResult, StopReason } from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'

/** Tinker's value for unused cells of the top-K matrices. */
const UNUSED_LOGPROB = -99999

interface Logprob {
  logprob: number
  rank: number | null
}

export interface CompletionAnswer {
  choices: {
    index: number
    token_ids?: number[] | null
    finish_reason: string | null
    logprobs?: { token_logprobs: (number | null)[] } | null
    prompt_logprobs?: (Record<string, Logprob> | null)[] | null
  }[]
}

/** A seed vLLM takes (int64) that is the job's seed whenever a JSON number can carry it exactly. */
function seedOf(seed: bigint): number {
  const signed = BigInt.asIntN(64, seed)
  const exact = Number(signed)
  return BigInt(exact) === signed && Number.isSafeInteger(exact) ? exact : Number(BigInt.asIntN(53, seed))
}

/**
 * The body of /v1/completions for a job. vLLM stops at EOS by default; Tinker stops only where asked,
 * hence ignore_eos. Tinker ends a sequence at the context limit, where vLLM refuses the request, hence the
 * cap on max_tokens. Top-K beyond the server's --max-logprobs would be refused by vLLM: refused here, clearly.
 */
export function completionRequest(
  job: SampleJob,
  model: string,
  maxContext: number,
  maxLogprobs: number,
): string {
  const wantPrompt = job.promptLogprobs || job.topkPromptLogprobs > 0
  if (job.topkPromptLogprobs > maxLogprobs) {
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `topk_prompt_logprobs ${job.topkPromptLogprobs} exceeds this model's vLLM limit of ${maxLogprobs} (--max-logprobs)`,
    )
  }
  return JSON.stringify({
    model,
    prompt: Array.from(job.prompt),
    n: job.numSamples,
    max_tokens: Math.min(job.maxTokens, maxContext - job.prompt.length),
    temperature: job.temperature,
    top_p: job.topP,
    top_k: Math.max(job.topK, 0),
    seed: seedOf(job.seed),
    stop: job.stopStrings,
    stop_token_ids: job.stopTokens,
    ignore_eos: true,
    logprobs: 0,
    return_token_ids: true,
    ...(wantPrompt ? { prompt_logprobs: job.topkPromptLogprobs } : {}),
  })
}

const stopReasonOf = (finish: string | null): StopReason => {
  if (finish === 'length') return 'length'
  if (finish === 'stop') return 'stop'
  throw tuftError('TUFT_ENGINE', `vLLM ended a sequence with finish_reason '${finish}'`)
}

export function sampleResultOf(job: SampleJob, answer: CompletionAnswer): SampleResult {
  const choices = [...answer.choices].sort((a, b) => a.index - b.index)
  if (choices.length !== job.numSamples) {
    throw tuftError('TUFT_ENGINE', `vLLM answered ${choices.length} sequences for n=${job.numSamples}`)
  }
  const result: SampleResult = {
    sequences: choices.map((c) => {
      const lps = c.logprobs?.token_logprobs ?? []
      if (!c.token_ids || lps.length !== c.token_ids.length) {
        throw tuftError('TUFT_ENGINE', 'vLLM answered without token_ids or their logprobs (return_token_ids)')
      }
      return {
        tokens: Int32Array.from(c.token_ids),
        logprobs: Float32Array.from(lps, (lp) => lp ?? Number.NaN),
        stopReason: stopReasonOf(c.finish_reason),
      }
    }),
  }
  if (job.promptLogprobs || job.topkPromptLogprobs > 0)
    readPromptLogprobs(job, choices[0]?.prompt_logprobs, result)
  return result
}

/** Prompt logprobs by the prompt token's id; the top K by rank, best first (unused cells as Tinker's). */
function readPromptLogprobs(
  job: SampleJob,
  maps: (Record<string, Logprob> | null)[] | null | undefined,
  result: SampleResult,
): void {
  const P = job.prompt.length
  if (!maps || maps.length !== P) throw tuftError('TUFT_ENGINE', 'vLLM answered without prompt_logprobs')
  const K = job.topkPromptLogprobs
  const lps = new Float32Array(P).fill(Number.NaN)
  const ids = new Int32Array(P * K)
  const topk = new Float32Array(P * K).fill(UNUSED_LOGPROB)
  for (let i = 1; i < P; i++) {
    const map = maps[i]
    const own = map?.[String(job.prompt[i])]
    if (!map || !own) throw tuftError('TUFT_ENGINE', `vLLM's prompt_logprobs lack position ${i}`)
    lps[i] = own.logprob
    for (const [id, lp] of Object.entries(map)) {
      const r = lp.rank
      if (r !== null && r >= 1 && r <= K) {
        ids[i * K + r - 1] = Number(id)
        topk[i * K + r - 1] = lp.logprob
      }
    }
  }
  if (job.promptLogprobs) result.promptLogprobs = lps
  if (K > 0) result.topkPromptLogprobs = { tokenIds: ids, logprobs: topk, k: K, promptLength: P }
}
