// Spawns the real `tuft` command (node bin/tuft.js) on a free loopback port with a temp YAML config
// (by default: the engine double as a third-party provider module) and waits until it is ready.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { ALICE, BOB, MODEL, VOCAB } from './app.js'

const ROOT = new URL('../../', import.meta.url).pathname
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
  const proc = spawn(process.execPath, [join(ROOT, 'bin/tuft.js'), '--config', configPath], {
    cwd: dir,
    env: { ...process.env, TUFT_HOST: '', TUFT_PORT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString()
  })
  proc.stderr!.on('data', (b: Buffer) => {
    out += b.toString()
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tuft did not become ready:\n${out}`)), 30_000)
    const check = () => {
      for (const line of out.split('\n')) {
        if (!line.startsWith('{') || !line.endsWith('}')) continue
        if ((JSON.parse(line) as { msg?: string }).msg === 'tuft ready: all models loaded') {
          const listening = out.split('\n').find((l) => l.includes('"tuft listening"'))
          clearTimeout(timer)
          proc.stdout!.off('data', check)
          resolve((JSON.parse(listening!) as { address: string }).address)
          return
        }
      }
    }
    proc.stdout!.on('data', check)
    void exited.then((code) => reject(new Error(`tuft exited with ${code}:\n${out}`)))
  })
  return {
    baseUrl,
    dir,
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM')
      const code = await exited
      rmSync(dir, { recursive: true, force: true })
      return code
    },
  }
}
