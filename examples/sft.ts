// Supervised fine-tuning with the TypeScript client: teach the model to answer a few questions with
// fixed replies. Prompt tokens (through the chat template) get weight 0, reply tokens weight 1, so the
// loss counts only the replies. Prints the loss per reply token at every step, then samples an answer.
//
//   npm start                      # in another terminal: serves the embedded model on 127.0.0.1:10610
//   npx tsx examples/sft.ts        # STEPS=40 by default; TUFT_BASE_URL / TUFT_API_KEY to point elsewhere

import { datumFromTokens, ServiceClient } from '../client/index.js'
import { API_KEY, BASE_URL, serverTokenizer } from './tokenizer.js'

const STEPS = Number(process.env.STEPS ?? 40)
const EXAMPLES: [string, string][] = [
  ['What is the capital of France?', 'Paris.'],
  ['What colour is the sky on a clear day?', 'Blue.'],
  ['How many legs does a spider have?', 'Eight.'],
]

const service = new ServiceClient({ baseUrl: BASE_URL, apiKey: API_KEY })
try {
  const model = (await service.getServerCapabilities()).supported_models[0]?.model_name
  if (!model) throw new Error('the server serves no model')
  const tokenizer = serverTokenizer(BASE_URL, API_KEY, model)
  const eos = await tokenizer.encode('<|im_end|>')
  const data = await Promise.all(
    EXAMPLES.map(async ([question, answer]) => {
      const prompt = await tokenizer.encode(question, true)
      const reply = [...(await tokenizer.encode(answer)), ...eos]
      return {
        datum: datumFromTokens([...prompt, ...reply], [...prompt.map(() => 0), ...reply.map(() => 1)]),
        reply,
      }
    }),
  )
  const replyTokens = data.reduce((n, d) => n + d.reply.length, 0)

  const training = await service.createLoraTrainingClient(model, { rank: 8, seed: 0 })
  console.log(`training run ${training.modelId} on ${model}: ${STEPS} steps over ${EXAMPLES.length} examples`)
  for (let step = 1; step <= STEPS; step++) {
    const [fb] = await Promise.all([
      training.forwardBackward(
        data.map((d) => d.datum),
        'cross_entropy',
      ),
      training.optimStep({ learning_rate: 5e-3 }),
    ])
    console.log(
      `step ${String(step).padStart(3)}  loss ${(fb.metrics['loss:sum']! / replyTokens).toFixed(4)}`,
    )
  }

  const sampler = await training.saveWeightsAndGetSamplingClient()
  const [question] = EXAMPLES[0]!
  const out = await sampler.sample(await tokenizer.encode(question, true), 1, {
    max_tokens: 8,
    temperature: 0,
    stop: eos,
  })
  console.log(`${question} → ${JSON.stringify(await tokenizer.decode([...out.sequences[0]!.tokens]))}`)
} finally {
  await service.close()
}
