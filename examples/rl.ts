// Reinforcement learning with the TypeScript client: sample groups of completions from the current
// weights, score them locally, and train on them with the `importance_sampling` loss (advantage =
// reward minus the group's mean, the sampler's logprobs as the behaviour policy). The reward here asks
// for variety: the share of completion tokens that differ from the token before them. Prints the mean
// reward and the loss per step (the loss stays near 0: on-policy, with advantages centred per group,
// the ratios are 1 and the advantages sum to 0; its gradient is what moves the policy).
//
//   npm start                      # in another terminal
//   npx tsx examples/rl.ts         # STEPS=12 by default; TUFT_BASE_URL / TUFT_API_KEY to point elsewhere

import { makeDatum, ServiceClient } from '../client/index.js'
import { API_KEY, BASE_URL, serverTokenizer } from './tokenizer.js'

const STEPS = Number(process.env.STEPS ?? 12)
const GROUP = 8
const MAX_TOKENS = 12
const PROMPTS = ['Tell me a story.', 'Describe the sea.']

/** The share of tokens unlike the one before them: 0 for one token repeated, 1 for no repeats. */
function reward(tokens: number[]): number {
  if (tokens.length < 2) return 0
  let changes = 0
  for (let i = 1; i < tokens.length; i++) if (tokens[i] !== tokens[i - 1]) changes++
  return changes / (tokens.length - 1)
}

const service = new ServiceClient({ baseUrl: BASE_URL, apiKey: API_KEY })
try {
  const model = (await service.getServerCapabilities()).supported_models[0]?.model_name
  if (!model) throw new Error('the server serves no model')
  const tokenizer = serverTokenizer(BASE_URL, API_KEY, model)
  const prompts = await Promise.all(PROMPTS.map((p) => tokenizer.encode(p, true)))
  const training = await service.createLoraTrainingClient(model, { rank: 8, seed: 0 })
  console.log(
    `training run ${training.modelId} on ${model}: ${STEPS} steps, ${PROMPTS.length} prompts × ${GROUP} samples`,
  )

  for (let step = 1; step <= STEPS; step++) {
    const sampler = await training.saveWeightsAndGetSamplingClient()
    const groups = await Promise.all(
      prompts.map((prompt) => sampler.sample(prompt, GROUP, { max_tokens: MAX_TOKENS, temperature: 1 })),
    )
    const data = []
    let total = 0
    for (const [g, out] of groups.entries()) {
      const prompt = prompts[g]!
      const rewards = out.sequences.map((s) => reward(s.tokens))
      const mean = rewards.reduce((a, b) => a + b, 0) / rewards.length
      total += mean
      for (const [i, s] of out.sequences.entries()) {
        if (s.tokens.length === 0) continue
        // Targets are the sequence shifted by one: the completion's tokens sit at prompt.length - 1 onwards.
        const seq = [...prompt, ...s.tokens]
        const logprobs = new Float32Array(seq.length - 1)
        const advantages = new Float32Array(seq.length - 1)
        s.tokens.forEach((_, j) => {
          logprobs[prompt.length - 1 + j] = s.logprobs![j]!
          advantages[prompt.length - 1 + j] = rewards[i]! - mean
        })
        data.push(makeDatum(seq.slice(0, -1), { target_tokens: seq.slice(1), logprobs, advantages }))
      }
    }
    const [fb] = await Promise.all([
      training.forwardBackward(data, 'importance_sampling'),
      training.optimStep({ learning_rate: 1e-2 }),
    ])
    console.log(
      `step ${String(step).padStart(3)}  reward ${(total / prompts.length).toFixed(3)}  loss ${fb.metrics['loss:sum']!.toFixed(4)}`,
    )
  }
} finally {
  await service.close()
}
