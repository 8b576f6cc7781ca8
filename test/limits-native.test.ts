// Memory admission on the native engine, which leaves the estimate to core: the real `tuft` process books
// each run from the model's config.json shapes against server.memory_budget_bytes, refuses the run that
// would pass it (429, naming the budget), and admits it again once another run is unloaded.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { estimateTrainingMemory, shapeFromHfConfig } from '../core/domain/memory.js'
import { assertError, call, result } from './helpers/http.js'
import {
  embeddedModelDir,
  NATIVE_MODEL,
  type NativeServer,
  startNativeTuft,
  USERS,
} from './helpers/native-server.js'

const MAX_BATCH_TOKENS = 512
const RANK = 8

let server: NativeServer

before(async () => {
  const shape = shapeFromHfConfig(
    JSON.parse(readFileSync(join(await embeddedModelDir(), 'config.json'), 'utf8')),
  )
  assert.ok(shape, 'the embedded model has a config.json with its shapes')
  const lora = { rank: RANK, alpha: 32, seed: 0, trainAttn: true, trainMlp: true, trainUnembed: true }
  const m = estimateTrainingMemory(shape, lora, MAX_BATCH_TOKENS)
  // Room for the model's shared memory and one and a half adapters.
  const budget = Math.floor(m.sharedBytes + 1.5 * m.adapterBytes)
  server = await startNativeTuft({
    server: { max_batch_tokens: MAX_BATCH_TOKENS, memory_budget_bytes: budget },
  })
})

after(async () => {
  assert.equal(await server.stop(), 0, server.output().slice(-2000))
})

async function createModel(key: string, sessionId: string, seq: number) {
  return call(server.baseUrl, 'POST', '/create_model', {
    key,
    json: {
      session_id: sessionId,
      model_seq_id: seq,
      base_model: NATIVE_MODEL,
      lora_config: { rank: RANK, train_attn: true, train_mlp: true, train_unembed: true },
    },
  })
}

test('a second run past the budget is refused until the first is unloaded', async () => {
  const session = async (key: string) =>
    (await call(server.baseUrl, 'POST', '/create_session', { key, json: {} })).json.session_id as string
  const ann = await session(USERS.ann)
  const ben = await session(USERS.ben)
  const first = await createModel(USERS.ann, ann, 0)
  assert.equal(first.status, 200, first.text)
  assert.equal(
    (await result(server.baseUrl, USERS.ann, first.json.request_id)).json.model_id,
    first.json.model_id,
  )

  assertError(await createModel(USERS.ben, ben, 0), 429, /^server\.memory_budget_bytes \(\d+\) reached/)

  const unload = await call(server.baseUrl, 'POST', '/unload_model', {
    key: USERS.ann,
    json: { model_id: first.json.model_id },
  })
  assert.equal(unload.status, 200, unload.text)
  await result(server.baseUrl, USERS.ann, unload.json.request_id)
  const second = await createModel(USERS.ben, ben, 0)
  assert.equal(second.status, 200, second.text)
  const done = await result(server.baseUrl, USERS.ben, second.json.request_id)
  assert.equal(done.json.model_id, second.json.model_id, done.text)
})
