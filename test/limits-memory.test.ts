// Memory admission's arithmetic: the estimate from a Hugging Face config.json (core/domain/memory.ts),
// and the LimitsService's booking (each model's shared memory once, adapters per run, 429 vs 400).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { estimateTrainingMemory, loraParams, shapeFromHfConfig } from '../core/domain/memory.js'
import type { LoraSpec } from '../core/engine.js'
import { isTuftError } from '../core/errors.js'
import { LimitsService } from '../core/services/limits.js'
import { MemoryStore } from '../persistence/memory.js'

/** Qwen/Qwen3-0.6B's config.json, the keys that matter. */
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'],
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  tie_word_embeddings: true,
}

const lora = (rank: number, over: Partial<LoraSpec> = {}): LoraSpec => ({
  rank,
  alpha: 32,
  seed: 1,
  trainAttn: true,
  trainMlp: true,
  trainUnembed: false,
  ...over,
})

test('a rank-128 adapter on Qwen3-0.6B: 80.7 M parameters, 16 bytes each once it trains', () => {
  const shape = shapeFromHfConfig(QWEN3_06B)
  assert.ok(shape)
  // 28 layers × 128 × (q 1024+2048, k and v 1024+1024, o 2048+1024, gate and up 1024+3072, down 3072+1024).
  assert.equal(loraParams(shape, lora(128)), 80_740_352)
  assert.equal(loraParams(shape, lora(128, { trainUnembed: true })), 80_740_352 + 128 * (1024 + 151936))
  assert.equal(loraParams(shape, lora(128, { trainMlp: false })), 128 * 28 * 10240)
  const m = estimateTrainingMemory(shape, lora(128), 1024)
  assert.equal(m.adapterBytes, 16 * 80_740_352)
  // fp32 base weights (~596 M parameters with tied embeddings) plus activations for 1024 tokens.
  assert.ok(m.sharedBytes > 4 * 596e6 && m.sharedBytes < 4 * 596e6 + 4e9, `${m.sharedBytes}`)
  const bigger = estimateTrainingMemory(shape, lora(128), 2048)
  assert.ok(bigger.sharedBytes > m.sharedBytes, 'activations grow with max_batch_tokens')
})

test('config.json without the shapes gives no estimate; defaults follow Hugging Face', () => {
  assert.equal(shapeFromHfConfig({ model_type: 'mystery' }), null)
  assert.equal(shapeFromHfConfig('nope'), null)
  const nested = shapeFromHfConfig({
    text_config: { ...QWEN3_06B, head_dim: undefined, num_key_value_heads: undefined },
  })
  assert.equal(nested?.headDim, 64)
  assert.equal(nested?.kvHeads, 16)
})

function service(budget: number): LimitsService {
  return new LimitsService({
    spec: {
      per_user: {
        weight: 1,
        max_training_runs: null,
        max_lora_rank: null,
        max_sessions: null,
        max_pending_requests: null,
        max_sampling_requests_queued: null,
        max_checkpoint_bytes: null,
        max_tokens_per_request: null,
      },
      users: { bob: { weight: 3 } },
    },
    store: new MemoryStore(),
    sessionExpiryMs: 60_000,
    memoryBudgetBytes: budget,
    log: pino({ level: 'silent' }),
  })
}

function refusal(fn: () => void): { status: number; message: string } {
  try {
    fn()
  } catch (err) {
    assert.ok(isTuftError(err))
    return { status: err.statusCode, message: err.message }
  }
  assert.fail('expected a refusal')
}

test("booking: a model's shared memory counts once, adapters per run; release frees; force always books", () => {
  const limits = service(800)
  const est = { adapterBytes: 200, sharedBytes: 300 }
  limits.bookMemory('r1', 'm', est)
  limits.bookMemory('r1', 'm', est) // booked once
  limits.bookMemory('r2', 'm', est)
  assert.deepEqual(limits.memory(), { budget_bytes: 800, booked_bytes: 700 })
  const busy = refusal(() => limits.bookMemory('r3', 'm', est))
  assert.equal(busy.status, 429)
  assert.match(busy.message, /^server\.memory_budget_bytes \(800\) reached/)
  // Another model books its own shared memory.
  assert.equal(
    refusal(() => limits.bookMemory('x1', 'other', { adapterBytes: 1, sharedBytes: 250 })).status,
    429,
  )
  limits.releaseMemory('r2')
  limits.bookMemory('r3', 'm', est)
  limits.bookMemory('r4', 'm', est, true)
  assert.equal(limits.memory().booked_bytes, 900)
  // A run that alone passes the budget can never fit: a user error.
  const never = refusal(() => limits.bookMemory('big', 'm2', { adapterBytes: 900, sharedBytes: 200 }))
  assert.equal(never.status, 400)
  assert.match(never.message, /too small for this run/)
  limits.bookMemory('unknown', 'm3', null)
  assert.equal(limits.memory().booked_bytes, 900)
})

test('weights: per_user, overridden per user', () => {
  const limits = service(1)
  assert.equal(limits.userWeight('alice'), 1)
  assert.equal(limits.userWeight('bob'), 3)
})
