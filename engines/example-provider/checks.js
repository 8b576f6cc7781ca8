// Input checks, before any work starts: a bad request is answered with a coded 400 and leaves every
// adapter as it was (the engine contract's promise, which the conformance suite checks).

import { tuftError } from 'tuft/engine'

export const LOSSES = ['cross_entropy', 'importance_sampling']

export function bad(message) {
  return tuftError('TUFT_BAD_REQUEST', message)
}

function ids(values, vocab, what) {
  for (const t of values)
    if (!(t >= 0 && t < vocab)) throw bad(`${what}: token ${t} is outside [0, ${vocab})`)
}

function finite(values, length, what) {
  if (values === undefined) throw bad(`${what} is required`)
  if (values.length !== length) throw bad(`${what} has ${values.length} values, expected ${length}`)
  for (const x of values) if (!Number.isFinite(x)) throw bad(`${what} holds a non-finite value`)
}

export function checkItem(item, i, info) {
  const n = item.tokens.length
  const at = `item ${i}`
  if (n === 0) throw bad(`${at}: no tokens`)
  if (n > info.maxContext) throw bad(`${at}: ${n} tokens exceed the context of ${info.maxContext}`)
  if (!LOSSES.includes(item.lossFn)) throw bad(`${at}: loss ${item.lossFn} is not supported (${LOSSES})`)
  if (!Number.isInteger(item.k) || item.k < 1) throw bad(`${at}: k must be a positive integer`)
  if (item.targets.length !== n * item.k) throw bad(`${at}: expected ${n} x ${item.k} targets`)
  ids(item.tokens, info.vocabSize, `${at} tokens`)
  ids(item.targets, info.vocabSize, `${at} targets`)
  if (item.lossFn === 'cross_entropy') {
    if (item.weights !== undefined) finite(item.weights, n * item.k, `${at} weights`)
    return
  }
  if (item.k !== 1) throw bad(`${at}: ${item.lossFn} takes one target per position`)
  finite(item.logprobs, n, `${at} logprobs`)
  finite(item.advantages, n, `${at} advantages`)
}

export function checkAdam(adam) {
  for (const [name, value] of Object.entries(adam))
    if (!Number.isFinite(value) || value < 0) throw bad(`adam ${name} must be a finite number >= 0`)
  if (adam.beta1 >= 1 || adam.beta2 >= 1 || adam.eps <= 0) throw bad('betas must be < 1 and eps > 0')
}

export function checkJob(job, info) {
  const p = job.prompt.length
  if (p === 0) throw bad('the prompt is empty')
  ids(job.prompt, info.vocabSize, 'prompt')
  if (!Number.isInteger(job.numSamples) || job.numSamples < 1) throw bad('numSamples must be >= 1')
  if (!Number.isInteger(job.maxTokens) || job.maxTokens < 0) throw bad('maxTokens must be >= 0')
  if (p + job.maxTokens > info.maxContext)
    throw bad(`prompt + maxTokens exceed the context of ${info.maxContext}`)
  if (!(job.temperature >= 0)) throw bad('temperature must be >= 0')
  if (!(job.topP > 0 && job.topP <= 1)) throw bad('topP must be in (0, 1]')
  if (
    !Number.isInteger(job.topkPromptLogprobs) ||
    job.topkPromptLogprobs < 0 ||
    job.topkPromptLogprobs > info.vocabSize
  )
    throw bad('topkPromptLogprobs must be in [0, vocabulary size]')
}
