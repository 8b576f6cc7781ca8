// Command line of the seeded model generator (engines/embedded-model.ts): writes a tiny, small or
// Qwen3-0.6B-shaped model directory for tests and benchmarks.
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  type Dtype,
  generateModel,
  type ModelPreset,
  PRESETS,
  type PresetName,
} from '../engines/embedded-model.js'

function usage(): never {
  process.stderr.write(
    'usage: node --import tsx scripts/gen-model.ts --out DIR [--preset tiny|small|bench] [--seed N] [--dtype f32|bf16]\n',
  )
  process.exit(2)
}

function main(argv: string[]): void {
  let out: string | undefined
  let presetName: string = 'tiny'
  let seed = 0
  let dtype: Dtype | undefined
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1]
    if (value === undefined) usage()
    if (argv[i] === '--out') out = value
    else if (argv[i] === '--preset') presetName = value
    else if (argv[i] === '--seed') seed = Number(value)
    else if (argv[i] === '--dtype') dtype = value === 'bf16' ? 'BF16' : value === 'f32' ? 'F32' : usage()
    else usage()
    i++
  }
  if (out === undefined || !(presetName in PRESETS) || !Number.isInteger(seed)) usage()
  const base = PRESETS[presetName as PresetName]
  const preset: ModelPreset = { ...base, dtype: dtype ?? base.dtype }
  const started = Date.now()
  generateModel(out, preset, seed)
  process.stdout.write(
    `wrote ${presetName} model (${preset.dtype}, seed ${seed}) to ${resolve(out)} in ${Date.now() - started} ms\n`,
  )
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2))
}
