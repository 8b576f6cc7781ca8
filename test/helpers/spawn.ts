// Spawns the real `tuft` command (node bin/tuft.js) on a free loopback port with a temp YAML config
// (by default: the engine double as a third-party provider module) and waits until it is ready.

import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { ALICE, BOB, MODEL, VOCAB } from './app.js'
import { startTuft } from './tuft-process.js'

const PROVIDER = new URL('./engine-double-provider.ts', import.meta.url).pathname

export interface SpawnedServer {
  baseUrl: string
  dir: string
  proc: ChildProcess
  /** Everything the server wrote, for assertions and failure messages. */
  output(): string
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>
}

/** The default config serves the engine double (as a third-party module) to alice and bob. */
export function doubleConfig(dir: string): Record<string, unknown> {
  const options = { vocab_size: VOCAB, max_context: 128 }
  return {
    checkpoint_dir: join(dir, 'checkpoints'),
    model_cache_dir: join(dir, 'models'),
    authorized_users: { [ALICE]: 'alice', [BOB]: 'bob' },
    supported_models: [
      {
        model_name: MODEL,
        model_path: dir,
        max_model_len: 128,
        training: { provider: PROVIDER, options },
        sampling: { provider: PROVIDER, options },
      },
    ],
    server: { long_poll_timeout_ms: 5000 },
  }
}

/** `config(dir)` replaces the default config; port 0 and the log level are always set here. */
export async function spawnTuft(
  config: (dir: string) => Record<string, unknown> = doubleConfig,
): Promise<SpawnedServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-e2e-'))
  const configPath = join(dir, 'tuft.config.yaml')
  writeFileSync(configPath, stringify({ ...config(dir), host: '127.0.0.1', port: 0, log_level: 'info' }))
  const server = await startTuft(configPath, dir)
  return {
    baseUrl: server.baseUrl,
    dir,
    proc: server.proc,
    output: server.output,
    async stop() {
      const code = await server.stop()
      rmSync(dir, { recursive: true, force: true })
      return code
    },
  }
}
