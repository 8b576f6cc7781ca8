// PEFT adapter files: adapter_config.json and float32 safetensors (an 8-byte little-endian header
// length, a JSON header of names → dtype, shape and byte offsets, then the raw data).

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tuftError } from 'tuft/engine'

/** The names PEFT gives the one LoRA-adapted layer of this model. */
export const LORA_A = 'base_model.model.bigram.lora_A.weight'
export const LORA_B = 'base_model.model.bigram.lora_B.weight'

/**
 * @param {string} file
 * @param {Record<string, { shape: number[], data: Float32Array }>} tensors
 * @param {Record<string, string>} [metadata]
 */
export function writeSafetensors(file, tensors, metadata = {}) {
  /** @type {Record<string, unknown>} */
  const header = { __metadata__: metadata }
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const out = Buffer.alloc(8 + json.length + offset)
  out.writeBigUInt64LE(BigInt(json.length), 0)
  out.write(json, 8, 'latin1')
  let at = 8 + json.length
  for (const t of Object.values(tensors)) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at)
    at += t.data.byteLength
  }
  writeFileSync(file, out)
}

/**
 * @param {string} file
 * @returns {{ tensors: Record<string, { shape: number[], data: Float32Array }>, metadata: Record<string, string> }}
 */
export function readSafetensors(file) {
  if (!existsSync(file)) throw tuftError('TUFT_NOT_FOUND', `${file} does not exist`)
  const bytes = readFileSync(file)
  const length = Number(bytes.readBigUInt64LE(0))
  const header = JSON.parse(bytes.toString('latin1', 8, 8 + length))
  /** @type {Record<string, { shape: number[], data: Float32Array }>} */
  const tensors = {}
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue
    if (t.dtype !== 'F32') throw tuftError('TUFT_BAD_REQUEST', `${file}: ${name} is ${t.dtype}, not F32`)
    const [begin, end] = t.data_offsets
    const copy = bytes.subarray(8 + length + begin, 8 + length + end)
    tensors[name] = {
      shape: t.shape,
      data: new Float32Array(copy.buffer.slice(copy.byteOffset, copy.byteOffset + copy.byteLength)),
    }
  }
  return { tensors, metadata: header.__metadata__ ?? {} }
}

/**
 * Writes a PEFT adapter directory; returns its manifest.
 * @param {string} dir
 * @param {{ rank: number, alpha: number, vocab: number, a: Float32Array, b: Float32Array }} adapter
 */
export function writePeft(dir, { rank, alpha, vocab, a, b }) {
  mkdirSync(dir, { recursive: true })
  const config = { peft_type: 'LORA', r: rank, lora_alpha: alpha, target_modules: ['bigram'], bias: 'none' }
  writeFileSync(join(dir, 'adapter_config.json'), `${JSON.stringify(config, null, 2)}\n`)
  writeSafetensors(join(dir, 'adapter_model.safetensors'), {
    [LORA_A]: { shape: [rank, vocab], data: a },
    [LORA_B]: { shape: [vocab, rank], data: b },
  })
  return manifest(dir, ['adapter_config.json', 'adapter_model.safetensors'])
}

/**
 * Reads a PEFT adapter directory written for a vocabulary of `vocab` tokens.
 * @param {string} dir
 * @param {number} vocab
 */
export function readPeft(dir, vocab) {
  const configFile = join(dir, 'adapter_config.json')
  if (!existsSync(configFile)) throw tuftError('TUFT_NOT_FOUND', `${dir} holds no adapter_config.json`)
  const config = JSON.parse(readFileSync(configFile, 'utf8'))
  const rank = config.r
  const { tensors } = readSafetensors(join(dir, 'adapter_model.safetensors'))
  const a = tensors[LORA_A]
  const b = tensors[LORA_B]
  if (!a || !b || a.data.length !== rank * vocab || b.data.length !== vocab * rank) {
    throw tuftError('TUFT_BAD_REQUEST', `${dir}: not a rank-${rank} bigram adapter for ${vocab} tokens`)
  }
  return { rank, alpha: config.lora_alpha ?? rank, a: a.data, b: b.data }
}

/**
 * @param {string} dir
 * @param {string[]} names
 */
export function manifest(dir, names) {
  return { files: names.map((name) => ({ name, bytes: statSync(join(dir, name)).size })) }
}
