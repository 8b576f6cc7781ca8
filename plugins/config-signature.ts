// The configuration signature (ARCHITECTURE §8: never restore state under a different model): a durable
// store records the facts its training state depends on (base model names and paths, architecture from
// config.json, LoRA alpha rule, training engine), and a server whose configuration differs refuses to
// boot with a TUFT_CONFIG error naming each difference. `tuft clear-persistence` starts afresh.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { ModelConfig, TuftConfig } from '../config/schema.js'
import { tuftError } from '../core/errors.js'
import type { Json, Store } from '../core/persistence.js'
import { EMBEDDED_MODEL_NAME, GENERATOR_VERSION } from '../engines/embedded-model.js'

export const SIGNATURE_KEY = 'meta/config-signature'

/** Served when supported_models is empty (plugins/engines.ts); its bytes change with the generator. */
const EMBEDDED = { model_name: EMBEDDED_MODEL_NAME, generator_version: GENERATOR_VERSION }

/** config.json facts that change the shapes or meaning of saved adapter and optimizer tensors. */
const ARCH_KEYS = [
  'model_type',
  'architectures',
  'hidden_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'intermediate_size',
  'vocab_size',
  'tie_word_embeddings',
] as const

/** Top-level keys check_fields may add (TuFT spells them in capitals); models are always checked. */
const EXTRA_FIELDS = ['checkpoint_dir', 'model_owner'] as const

type Fields = Record<string, Json>

function architecture(modelPath: string): Fields | null {
  let raw: string
  try {
    raw = readFileSync(join(modelPath, 'config.json'), 'utf8')
  } catch {
    // Engines that are not Hugging Face models (or a model generated on first start) have none.
    return null
  }
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(raw) as Record<string, unknown>
  } catch (err) {
    throw tuftError('TUFT_CONFIG', `${modelPath}/config.json is not valid JSON: ${(err as Error).message}`)
  }
  // Some configs nest the language model's facts (multimodal wrappers).
  const text = (parsed.text_config as Record<string, unknown> | undefined) ?? parsed
  const facts: Fields = {}
  for (const key of ARCH_KEYS) {
    const value = text[key] ?? parsed[key]
    if (value !== undefined) facts[key] = value as Json
  }
  return facts
}

function modelFacts(m: ModelConfig): Fields {
  return {
    model_path: m.model_path,
    architecture: architecture(m.model_path),
    lora_alpha_ratio: m.lora_alpha_ratio ?? null,
    training_provider: m.capabilities.includes('training') ? m.training.provider : null,
  }
}

/** The signature of a configuration: flat `path → value` facts, compared field by field. */
export function configSignature(config: TuftConfig): Fields {
  const fields: Fields = {}
  if (config.supported_models.length === 0) {
    for (const [k, v] of Object.entries(EMBEDDED)) fields[`embedded_model.${k}`] = v
  }
  for (const m of config.supported_models) {
    for (const [k, v] of Object.entries(modelFacts(m))) fields[`supported_models[${m.model_name}].${k}`] = v
  }
  for (const name of config.persistence.check_fields ?? []) {
    const key = name.toLowerCase()
    if (key === 'supported_models') continue
    if (!(EXTRA_FIELDS as readonly string[]).includes(key)) {
      throw tuftError(
        'TUFT_CONFIG',
        `persistence.check_fields: unknown field '${name}'; known: SUPPORTED_MODELS, ${EXTRA_FIELDS.map((f) => f.toUpperCase()).join(', ')}`,
      )
    }
    fields[key] = config[key as (typeof EXTRA_FIELDS)[number]]
  }
  return fields
}

const show = (v: Json | undefined) => (v === undefined ? '(absent)' : JSON.stringify(v))

/** Each difference as `field: stored → configured`. */
export function signatureDifferences(stored: Fields, current: Fields): string[] {
  const names = [...new Set([...Object.keys(stored), ...Object.keys(current)])].sort()
  return names
    .filter((n) => JSON.stringify(stored[n]) !== JSON.stringify(current[n]))
    .map((n) => `${n}: ${show(stored[n])} in the store, ${show(current[n])} configured`)
}

/**
 * Records the signature in a durable store that has none, and stops the boot when the stored one
 * differs. A store that does not outlive the process holds no state to protect.
 */
export async function checkConfigSignature(store: Store, config: TuftConfig, log: Logger): Promise<void> {
  if (!store.durable) return
  const current = configSignature(config)
  const doc = await store.get<{ fields: Fields }>(SIGNATURE_KEY)
  if (!doc) {
    // Compare-and-set: of two servers booting at once on an empty store, the second one checks.
    const written = await store.put(SIGNATURE_KEY, { fields: current, at: Date.now() }, { ifVersion: 0 })
    if (written !== null) {
      log.info({ fields: Object.keys(current).length }, 'configuration signature recorded')
      return
    }
    return checkConfigSignature(store, config, log)
  }
  const differences = signatureDifferences(doc.value.fields, current)
  if (differences.length > 0) {
    throw tuftError(
      'TUFT_CONFIG',
      `The persisted state was created under a different model configuration (${differences.join('; ')}). ` +
        `Restore that configuration, or reset the state with 'tuft clear-persistence --config <file>'.`,
    )
  }
}
