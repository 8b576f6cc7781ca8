// Checkpoint archives of tied-embedding models (core/services/tied-archive.ts): at the root, the head's
// LoRA under Tinker's `model.unembed_tokens` name (what tinker-cookbook's weight tools merge into
// embed_tokens); under peft/, the adapter exactly as saved (lm_head, what PEFT and vLLM load). Untied
// models and adapters without a head archive the saved files alone. With a Python that has torch,
// transformers and peft, PEFT is checked to load peft/ with its head (skipped otherwise).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import pino from 'pino'
import { extract } from 'tar'
import type { CheckpointRecord } from '../core/domain/checkpoint.js'
import { EventBus } from '../core/events.js'
import { CheckpointService } from '../core/services/checkpoints.js'
import { hasTiedEmbeddings, stageTiedArchive } from '../core/services/tied-archive.js'
import { MemoryStore } from '../persistence/memory.js'
import { embeddedModelDir, NATIVE_MODEL, startNativeTuft, USERS } from './helpers/native-server.js'
import { writeF32Safetensors } from './helpers/safetensors.js'

/** A safetensors file's tensor names and its data section (everything after the header). */
function parts(path: string): { names: string[]; data: Buffer; header: Record<string, unknown> } {
  const buf = readFileSync(path)
  const len = Number(buf.readBigUInt64LE(0))
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>
  return {
    names: Object.keys(header)
      .filter((k) => k !== '__metadata__')
      .sort(),
    data: buf.subarray(8 + len),
    header,
  }
}

const t = (rows: number, cols: number, start: number) => ({
  shape: [rows, cols],
  data: Float32Array.from({ length: rows * cols }, (_, i) => start + i),
})

test('a tied adapter is staged with the head renamed at the root and the saved files under peft/', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tuft-tied-'))
  try {
    const dir = join(root, 'ckpt')
    mkdirSync(dir)
    writeF32Safetensors(
      join(dir, 'adapter_model.safetensors'),
      {
        'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': t(2, 4, 0),
        'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight': t(4, 2, 100),
        'base_model.model.lm_head.lora_A.weight': t(2, 4, 200),
        'base_model.model.lm_head.lora_B.weight': t(8, 2, 300),
      },
      { format: 'pt' },
    )
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ r: 2, lora_alpha: 2 }))
    writeFileSync(join(dir, 'optimizer.safetensors'), 'moments')
    const files = ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors']
    const staging = join(root, '.tmp-archive-x')
    const packed = await stageTiedArchive(dir, files, staging)
    assert.deepEqual(packed, [...files, 'peft/adapter_config.json', 'peft/adapter_model.safetensors'])

    const saved = parts(join(dir, 'adapter_model.safetensors'))
    const staged = parts(join(staging, 'adapter_model.safetensors'))
    assert.deepEqual(staged.names, [
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.unembed_tokens.lora_A.weight',
      'base_model.model.model.unembed_tokens.lora_B.weight',
    ])
    assert.ok(staged.data.equals(saved.data), 'the tensor data is the same bytes')
    assert.deepEqual(
      staged.header['base_model.model.model.unembed_tokens.lora_B.weight'],
      saved.header['base_model.model.lm_head.lora_B.weight'],
      'same dtype, shape and offsets',
    )
    assert.deepEqual(staged.header.__metadata__, { format: 'pt' })
    assert.equal((readFileSync(join(staging, 'adapter_model.safetensors')).readUInt32LE(0) + 8) % 8, 0)
    for (const f of ['adapter_config.json', 'optimizer.safetensors'])
      assert.deepEqual(readFileSync(join(staging, f)), readFileSync(join(dir, f)))
    for (const f of ['adapter_config.json', 'adapter_model.safetensors'])
      assert.equal(
        statSync(join(staging, 'peft', f)).ino,
        statSync(join(dir, f)).ino,
        `peft/${f} is the saved file`,
      )

    // Without a head LoRA there is nothing to rename: the saved files are the archive.
    writeF32Safetensors(join(dir, 'adapter_model.safetensors'), {
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': t(2, 4, 0),
    })
    assert.equal(await stageTiedArchive(dir, files, join(root, '.tmp-archive-y')), null)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('the staging dir of a tied archive goes when the download is cut off', async () => {
  const root = mkdtempSync(join(tmpdir(), 'tuft-tied-abort-'))
  const store = new MemoryStore()
  try {
    const checkpoints = new CheckpointService({
      store,
      root,
      log: pino({ level: 'silent' }),
      events: new EventBus(),
    })
    const rel = join('alice', 'run-1', 'sampler_weights', 'w')
    mkdirSync(join(root, rel), { recursive: true })
    writeF32Safetensors(join(root, rel, 'adapter_model.safetensors'), {
      'base_model.model.lm_head.lora_A.weight': t(2, 4, 0),
      'base_model.model.lm_head.lora_B.weight': t(8, 2, 0),
    })
    writeFileSync(join(root, rel, 'adapter_config.json'), JSON.stringify({ r: 2, lora_alpha: 2 }))
    const record: CheckpointRecord = {
      runId: 'run-1',
      owner: 'alice',
      kind: 'sampler_weights',
      name: 'w',
      baseModel: 'm',
      lora: { rank: 2, alpha: 2, seed: 0, trainAttn: false, trainMlp: false, trainUnembed: true },
      hasOptimizer: false,
      dir: rel,
      createdAt: 0,
      sizeBytes: 0,
      public: false,
      expiresAt: null,
    }
    const stream = await checkpoints.archive(record, { tiedEmbeddings: true })
    const runDir = join(root, 'alice', 'run-1')
    assert.equal(readdirSync(runDir).filter((n) => n.startsWith('.tmp-archive-')).length, 1)
    stream.destroy()
    for (let i = 0; readdirSync(runDir).some((n) => n.startsWith('.tmp-')); i++) {
      assert.ok(i < 200, 'the staging dir is removed')
      await new Promise((r) => setTimeout(r, 10))
    }
  } finally {
    await store.close()
    rmSync(root, { recursive: true, force: true })
  }
})

test('tie_word_embeddings is read from config.json (or its text_config); no config.json is untied', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-tied-config-'))
  try {
    assert.equal(hasTiedEmbeddings(dir), false)
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ tie_word_embeddings: true }))
    assert.equal(hasTiedEmbeddings(dir), true)
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ tie_word_embeddings: false }))
    assert.equal(hasTiedEmbeddings(dir), false)
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ text_config: { tie_word_embeddings: true } }))
    assert.equal(hasTiedEmbeddings(dir), true)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A Python with torch, transformers and peft (PYTHON, else python3), or null. */
function peftPython(): string | null {
  const python = process.env.PYTHON ?? 'python3'
  const probe = spawnSync(python, ['-c', 'import torch, transformers, peft'], { encoding: 'utf8' })
  return probe.status === 0 ? python : null
}

/**
 * Loads an adapter dir into the model with PEFT; prints how many "missing adapter keys" warnings PEFT
 * gave and how far the head's loaded LoRA A is from the file's.
 */
const PEFT_LOAD = `
import sys, warnings
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from peft import PeftModel
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[1]), sys.argv[2])
missing = [w for w in caught if 'missing adapter keys' in str(w.message)]
loaded = dict(model.named_parameters())['base_model.model.lm_head.lora_A.default.weight']
saved = load_file(sys.argv[2] + '/adapter_model.safetensors')['base_model.model.lm_head.lora_A.weight']
print(len(missing), float((loaded.float() - saved.float()).abs().max()))
`

test("the native engine's tied tiny model: a downloaded archive has both layouts, and PEFT loads peft/", async (ctx) => {
  const server = await startNativeTuft()
  const client = server.client(USERS.ann)
  const out = mkdtempSync(join(tmpdir(), 'tuft-tied-archive-'))
  try {
    const modelDir = await embeddedModelDir()
    assert.equal(hasTiedEmbeddings(modelDir), true, 'the embedded model ties its head')
    const training = await client.createLoraTrainingClient(NATIVE_MODEL, { rank: 4 })
    const path = await training.saveWeightsForSampler('tied')
    const archive = await client.createRestClient().getCheckpointArchiveUrlFromTinkerPath(path)
    const res = await fetch(archive.url)
    assert.equal(res.status, 200)
    writeFileSync(join(out, 'a.tar.gz'), Buffer.from(await res.arrayBuffer()))
    const root = join(out, 'x')
    mkdirSync(root)
    await extract({ file: join(out, 'a.tar.gz'), cwd: root })
    assert.deepEqual(readdirSync(root).sort(), ['adapter_config.json', 'adapter_model.safetensors', 'peft'])
    assert.deepEqual(readdirSync(join(root, 'peft')).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
    ])

    const cookbook = parts(join(root, 'adapter_model.safetensors'))
    const peft = parts(join(root, 'peft', 'adapter_model.safetensors'))
    assert.ok(cookbook.names.includes('base_model.model.model.unembed_tokens.lora_A.weight'))
    assert.ok(!cookbook.names.some((n) => n.includes('lm_head')), 'no lm_head name left at the root')
    assert.ok(peft.names.includes('base_model.model.lm_head.lora_A.weight'))
    assert.equal(cookbook.names.length, peft.names.length)
    assert.ok(cookbook.data.equals(peft.data))
    // The files on disk keep the PEFT names the engines load: peft/ is them.
    const runId = path.slice('tinker://'.length).split('/')[0] as string
    const onDisk = join(server.dir, 'checkpoints', 'ann', runId, 'sampler_weights', 'tied')
    assert.deepEqual(
      readFileSync(join(root, 'peft', 'adapter_model.safetensors')),
      readFileSync(join(onDisk, 'adapter_model.safetensors')),
    )
    const leftovers = readdirSync(join(server.dir, 'checkpoints', 'ann', runId)).filter((n) =>
      n.startsWith('.tmp-'),
    )
    assert.deepEqual(leftovers, [], 'the staging dir is gone once the archive is sent')

    const python = peftPython()
    if (python === null) {
      ctx.diagnostic('PEFT load not checked: no Python with torch, transformers and peft (set PYTHON)')
      return
    }
    const loaded = spawnSync(python, ['-c', PEFT_LOAD, modelDir, join(root, 'peft')], { encoding: 'utf8' })
    assert.equal(loaded.status, 0, loaded.stderr)
    const [missing, diff] = loaded.stdout.trim().split('\n').at(-1)!.split(' ').map(Number) as [
      number,
      number,
    ]
    assert.equal(missing, 0, 'PEFT found every adapter key, the head included')
    assert.equal(diff, 0, "the head's LoRA A is the file's, not PEFT's own initialisation")
  } finally {
    await client.close()
    await server.stop()
    rmSync(out, { recursive: true, force: true })
  }
})
