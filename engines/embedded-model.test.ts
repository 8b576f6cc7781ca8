// Tests of the model generator: safetensors layout, Qwen3 names and shapes, determinism, bf16
// rounding and the atomic embedded-model cache.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ensureEmbeddedModel, generateModel, PRESETS, writeSafetensors } from './embedded-model.js'

interface Entry {
  dtype: string
  shape: number[]
  data_offsets: [number, number]
}

function readHeader(file: string): { header: Record<string, Entry>; dataStart: number; buf: Buffer } {
  const buf = readFileSync(file)
  const n = Number(buf.readBigUInt64LE(0))
  const parsed = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>
  delete parsed.__metadata__
  return { header: parsed as Record<string, Entry>, dataStart: 8 + n, buf }
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

describe('embedded model generator', () => {
  const root = mkdtempSync(join(tmpdir(), 'tuft-gen-'))
  after(() => rmSync(root, { recursive: true, force: true }))

  it('writes a Qwen3 directory with consistent shapes and offsets', () => {
    const dir = join(root, 'a')
    generateModel(dir, PRESETS.tiny, 0)
    assert.deepEqual(readdirSync(dir).sort(), [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ])
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
    assert.equal(config.architectures[0], 'Qwen3ForCausalLM')
    assert.equal(config.vocab_size, 151936)
    assert.equal(config.tie_word_embeddings, true)
    assert.equal(config.rope_parameters.rope_theta, 1000000)

    const { header, dataStart, buf } = readHeader(join(dir, 'model.safetensors'))
    assert.equal(dataStart % 8, 0)
    const p = PRESETS.tiny
    assert.deepEqual(header['model.embed_tokens.weight']?.shape, [p.vocabSize, p.hiddenSize])
    assert.deepEqual(header['model.layers.1.self_attn.q_proj.weight']?.shape, [
      p.nHeads * p.headDim,
      p.hiddenSize,
    ])
    assert.deepEqual(header['model.layers.1.self_attn.o_proj.weight']?.shape, [
      p.hiddenSize,
      p.nHeads * p.headDim,
    ])
    assert.deepEqual(header['model.layers.0.mlp.down_proj.weight']?.shape, [p.hiddenSize, p.intermediateSize])
    assert.deepEqual(header['model.layers.0.self_attn.k_norm.weight']?.shape, [p.headDim])
    assert.equal(header['lm_head.weight'], undefined, 'tied embeddings have no lm_head')
    assert.equal(Object.keys(header).length, 1 + 11 * p.nLayers + 1)

    // Offsets tile the data section exactly, in order.
    let end = 0
    for (const e of Object.values(header)) {
      assert.equal(e.data_offsets[0], end)
      assert.equal(e.data_offsets[1] - e.data_offsets[0], e.shape.reduce((a, b) => a * b, 1) * 4)
      end = e.data_offsets[1]
    }
    assert.equal(dataStart + end, buf.length)

    // Initialisation scales: embedding std 0.5, linear std 1/sqrt(fan_in), norms ones.
    const view = (name: string) => {
      const e = header[name]!
      const bytes = buf.subarray(dataStart + e.data_offsets[0], dataStart + e.data_offsets[1])
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))
    }
    const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length)
    assert.ok(Math.abs(std(view('model.embed_tokens.weight')) - 0.5) < 0.01)
    assert.ok(Math.abs(std(view('model.layers.0.mlp.down_proj.weight')) - 1 / 16) < 0.005)
    assert.ok(view('model.norm.weight').every((x) => x === 1))
  })

  it('is deterministic in its seed', () => {
    generateModel(join(root, 'b'), PRESETS.tiny, 0)
    generateModel(join(root, 'c'), PRESETS.tiny, 1)
    const a = sha(join(root, 'a', 'model.safetensors'))
    assert.equal(sha(join(root, 'b', 'model.safetensors')), a)
    assert.notEqual(sha(join(root, 'c', 'model.safetensors')), a)
  })

  it('rounds to bf16 to nearest even', () => {
    const file = join(root, 'bf16.safetensors')
    // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa (1.0) wins; 1 + 3*2^-8 rounds up.
    const values = [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, Number.NaN]
    writeSafetensors(file, [{ name: 'x', shape: [5], fill: (out) => out.set(values) }], 'BF16')
    const { header, dataStart, buf } = readHeader(file)
    assert.equal(header.x?.dtype, 'BF16')
    const got = [0, 1, 2, 3, 4].map((i) => buf.readUInt16LE(dataStart + 2 * i))
    assert.deepEqual(got.slice(0, 4), [0x3f80, 0x3f80, 0x3f82, 0xc020])
    assert.equal(got[4]! & 0x7f80, 0x7f80)
    assert.notEqual(got[4]! & 0x7f, 0, 'NaN stays NaN')
  })

  it('generates the embedded model once and reuses it', async () => {
    const cache = join(root, 'cache')
    const [p1, p2] = await Promise.all([ensureEmbeddedModel(cache), ensureEmbeddedModel(cache)])
    assert.equal(p1, p2)
    assert.equal(sha(join(p1, 'model.safetensors')), sha(join(root, 'a', 'model.safetensors')))
    assert.deepEqual(readdirSync(cache), [p1.split('/').pop()], 'no temp dir left behind')
    assert.equal(await ensureEmbeddedModel(cache), p1)
  })
})
