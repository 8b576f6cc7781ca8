// Checkpoint archives of models whose output head is tied to the input embeddings (config.json
// tie_word_embeddings, e.g. Qwen3-0.6B). Two readers want the head's LoRA under different names:
//
// - the tinker-cookbook's weight tools (`weights.build_hf_model`, `build_lora_adapter`) map the head by
//   Tinker's own name, `model.unembed_tokens`, onto `lm_head.weight` when the model has one and onto
//   `model.embed_tokens.weight` when it is tied; the PEFT name `lm_head` names a tensor a tied model's
//   safetensors lack, and the merge stops there;
// - PEFT and vLLM load the head's LoRA only as `lm_head` (PEFT ignores an `unembed_tokens` tensor
//   without a word and the adapter silently loses its head).
//
// So the archive of a tied model whose adapter trains the head carries both: at its root, where the
// cookbook reads, the adapter with the head under `base_model.model.model.unembed_tokens` (the other
// tensors and every other file as saved); under `peft/`, the adapter exactly as saved, for PEFT and
// vLLM. Archives of untied models, and of adapters without a head, are the saved files alone: there
// the PEFT names already serve both. The files on disk always keep the PEFT names the engines load.

import { createReadStream, createWriteStream, readFileSync } from 'node:fs'
import { link, mkdir, open } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors'
export const ADAPTER_CONFIG = 'adapter_config.json'
/** Where a tied model's archive keeps the adapter as PEFT and vLLM load it. */
export const PEFT_SUBDIR = 'peft'

const PEFT_HEAD = 'base_model.model.lm_head.'
const TINKER_HEAD = 'base_model.model.model.unembed_tokens.'

/** Whether the model in `modelDir` ties its output head to its input embeddings (its config.json says). */
export function hasTiedEmbeddings(modelDir: string): boolean {
  let config: Record<string, unknown>
  try {
    config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as Record<string, unknown>
  } catch {
    // Engines that are not Hugging Face models have no config.json: nothing is tied there.
    return false
  }
  // Multimodal wrappers keep the language model's facts in text_config.
  const text = (config.text_config ?? {}) as Record<string, unknown>
  return (text.tie_word_embeddings ?? config.tie_word_embeddings) === true
}

/**
 * Lays out in `staging` (a new directory on the same file system as `dir`) the archive of a tied model's
 * checkpoint `dir` holding `files`, and returns the paths to pack, relative to `staging`; null when its
 * adapter has no head LoRA (the saved files are the archive). Files are hard links where unchanged.
 */
export async function stageTiedArchive(
  dir: string,
  files: string[],
  staging: string,
): Promise<string[] | null> {
  const source = join(dir, ADAPTER_WEIGHTS)
  const { headerBytes, header } = await readHeader(source)
  if (!Object.keys(header).some((name) => name.startsWith(PEFT_HEAD))) return null
  const renamed: Record<string, unknown> = {}
  for (const [name, entry] of Object.entries(header))
    renamed[name.startsWith(PEFT_HEAD) ? TINKER_HEAD + name.slice(PEFT_HEAD.length) : name] = entry
  await mkdir(join(staging, PEFT_SUBDIR), { recursive: true })
  await writeRenamed(source, 8 + headerBytes, renamed, join(staging, ADAPTER_WEIGHTS))
  for (const f of files) if (f !== ADAPTER_WEIGHTS) await link(join(dir, f), join(staging, f))
  for (const f of [ADAPTER_WEIGHTS, ADAPTER_CONFIG]) await link(join(dir, f), join(staging, PEFT_SUBDIR, f))
  return [...files, ...[ADAPTER_CONFIG, ADAPTER_WEIGHTS].map((f) => `${PEFT_SUBDIR}/${f}`)]
}

/** A safetensors file's header (tensor names → dtype, shape, data offsets; `__metadata__`) and its size. */
async function readHeader(path: string): Promise<{ headerBytes: number; header: Record<string, unknown> }> {
  const fh = await open(path, 'r')
  try {
    const size = Buffer.alloc(8)
    await fh.read(size, 0, 8, 0)
    const headerBytes = Number(size.readBigUInt64LE(0))
    const text = Buffer.alloc(headerBytes)
    await fh.read(text, 0, headerBytes, 8)
    return { headerBytes, header: JSON.parse(text.toString('utf8')) as Record<string, unknown> }
  } finally {
    await fh.close()
  }
}

/** The same tensor data under a new header. Data offsets count from the end of the header, so they hold. */
async function writeRenamed(
  source: string,
  dataStart: number,
  header: Record<string, unknown>,
  target: string,
): Promise<void> {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  // Space-padded to a multiple of 8, as safetensors writers do, so the data stays aligned.
  const padded = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, ' ')])
  const size = Buffer.alloc(8)
  size.writeBigUInt64LE(BigInt(padded.length))
  const out = createWriteStream(target)
  out.write(Buffer.concat([size, padded]))
  await pipeline(createReadStream(source, { start: dataStart }), out)
}
