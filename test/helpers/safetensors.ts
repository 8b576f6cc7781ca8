// Minimal float32 safetensors reader/writer for the engine double (8-byte header length, JSON header,
// little-endian tensor data), so its checkpoints are real PEFT-style files.

import { readFileSync, writeFileSync } from 'node:fs'

export interface F32Tensor {
  shape: number[]
  data: Float32Array
}

export function writeF32Safetensors(
  path: string,
  tensors: Record<string, F32Tensor>,
  metadata: Record<string, string> = {},
): number {
  const header: Record<string, unknown> = { __metadata__: metadata }
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const head = Buffer.from(json, 'utf8')
  const out = Buffer.alloc(8 + head.byteLength + offset)
  out.writeBigUInt64LE(BigInt(head.byteLength), 0)
  head.copy(out, 8)
  let at = 8 + head.byteLength
  for (const t of Object.values(tensors)) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at)
    at += t.data.byteLength
  }
  writeFileSync(path, out)
  return out.byteLength
}

export function readF32Safetensors(path: string): {
  tensors: Record<string, F32Tensor>
  metadata: Record<string, string>
} {
  const buf = readFileSync(path)
  const len = Number(buf.readBigUInt64LE(0))
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>
  const tensors: Record<string, F32Tensor> = {}
  let metadata: Record<string, string> = {}
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>
      continue
    }
    const { dtype, shape, data_offsets } = entry as {
      dtype: string
      shape: number[]
      data_offsets: [number, number]
    }
    if (dtype !== 'F32') throw new Error(`${path}: tensor ${name} has dtype ${dtype}, expected F32`)
    const bytes = buf.subarray(8 + len + data_offsets[0], 8 + len + data_offsets[1])
    tensors[name] = { shape, data: new Float32Array(new Uint8Array(bytes).buffer) }
  }
  return { tensors, metadata }
}
