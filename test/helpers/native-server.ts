// The real `tuft` command on the embedded tiny Qwen3 model with the native engine, for the end-to-end
// tests that train and sample through HTTP. The model is generated once into a temp cache shared by
// every test file (generation is atomic, so concurrent files are safe), users have their own keys.

import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { type ForwardBackwardOutput, ServiceClient } from '../../client/index.js'
import {
  EMBEDDED_MODEL_NAME,
  EMBEDDED_TOKENIZER_ID,
  ensureEmbeddedModel,
} from '../../engines/embedded-model.js'
import { loadTokenBytes } from '../../engines/native/token-bytes.js'
import { startTuft } from './tuft-process.js'

export const NATIVE_MODEL = EMBEDDED_MODEL_NAME

/** Four users, each with their own API key. */
export const USERS = {
  ann: 'tml-native-ann-key',
  ben: 'tml-native-ben-key',
  cat: 'tml-native-cat-key',
  dan: 'tml-native-dan-key',
} as const

/** The temp model cache every native end-to-end test shares. */
export const SHARED_MODEL_CACHE = join(tmpdir(), 'tuft-native-e2e-models')

/** The embedded model's directory (generated on first use). */
export function embeddedModelDir(): Promise<string> {
  return ensureEmbeddedModel(SHARED_MODEL_CACHE)
}

export interface NativeServerOptions {
  /** Keys of the embedded model's entry in supported_models (e.g. max_loras); absent: the default. */
  model?: Record<string, unknown>
  /** `server:` keys. */
  server?: Record<string, unknown>
  /** Other top-level keys (operators, openai_api, ...). */
  config?: Record<string, unknown>
}

export interface NativeServer {
  baseUrl: string
  dir: string
  proc: ChildProcess
  output(): string
  /** A TS client for one of USERS (its heartbeat stops on stop()). */
  client(apiKey: string): ServiceClient
  /** Closes the clients, SIGTERMs the server and resolves with its exit code. */
  stop(): Promise<number | null>
}

/**
 * Boots `tuft --config` on a free loopback port. Without `model`, supported_models is left empty so the
 * server serves its embedded default (what a user gets out of the box); with it, the same generated
 * model is configured explicitly so per-model keys such as max_loras can be set.
 */
export async function startNativeTuft(opts: NativeServerOptions = {}): Promise<NativeServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-native-e2e-'))
  const modelDir = await embeddedModelDir()
  const config = {
    host: '127.0.0.1',
    port: 0,
    log_level: 'info',
    checkpoint_dir: join(dir, 'checkpoints'),
    model_cache_dir: SHARED_MODEL_CACHE,
    authorized_users: Object.fromEntries(Object.entries(USERS).map(([user, key]) => [key, user])),
    supported_models: opts.model
      ? [
          {
            model_name: NATIVE_MODEL,
            model_path: modelDir,
            tokenizer_id: EMBEDDED_TOKENIZER_ID,
            training: { provider: 'native', options: {} },
            sampling: { provider: 'native', options: {} },
            ...opts.model,
          },
        ]
      : [],
    server: { long_poll_timeout_ms: 5000, ...opts.server },
    ...opts.config,
  }
  const configPath = join(dir, 'tuft.config.yaml')
  writeFileSync(configPath, stringify(config))
  const server = await startTuft(configPath, dir)
  const clients: ServiceClient[] = []
  return {
    baseUrl: server.baseUrl,
    dir,
    proc: server.proc,
    output: server.output,
    client(apiKey) {
      const c = new ServiceClient({ baseUrl: server.baseUrl, apiKey, telemetry: false })
      clients.push(c)
      return c
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close()))
      const code = await server.stop()
      rmSync(dir, { recursive: true, force: true })
      return code
    },
  }
}

/** Byte strings of the embedded model's tokens (as the engine matches stop strings). */
export async function tokenBytes(): Promise<(id: number) => Uint8Array> {
  const dir = await embeddedModelDir()
  const vocab = 151936
  const { bytes, lens } = await loadTokenBytes(join(dir, 'tokenizer.json'), vocab)
  const offsets = new Int32Array(vocab + 1)
  for (let i = 0; i < vocab; i++) offsets[i + 1] = offsets[i]! + lens[i]!
  return (id) => bytes.subarray(offsets[id]!, offsets[id + 1]!)
}

/** The per-position logprobs a forward pass reports for datumFromTokens(tokens). */
export function forwardLogprobs(out: ForwardBackwardOutput): number[][] {
  return out.outputs.map((o) => {
    const t = o.logprobs
    if (!t) throw new Error(`forward output without logprobs: ${Object.keys(o).join(', ')}`)
    return Array.from(t.data)
  })
}
