// The real `tuft` command as a child process for the persistence tests: a config file that can be booted
// again on the same store and port, SIGKILL (a crash) as well as SIGTERM, one-shot runs of the command
// (a refused boot, clear-persistence), and raw Tinker calls that keep request ids in view.

import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { datumFromTokens } from '../../client/index.js'
import { decodeForwardBackwardOutput } from '../../core/wire/fwdbwd-output.js'
import { encodeForwardBackwardRequest } from '../../core/wire/fwdbwd-request.js'
import { ALICE, BOB, MODEL, VOCAB } from './app.js'

const ROOT = new URL('../../', import.meta.url).pathname
const PROVIDER = new URL('./engine-double-provider.ts', import.meta.url).pathname

export interface TuftConfigInput {
  dir: string
  port: number
  persistence: Record<string, unknown>
  /** Engine double options (e.g. step_delay_ms). */
  engine?: Record<string, unknown>
  model?: Record<string, unknown>
  telemetry?: Record<string, unknown>
}

/** Writes `<dir>/tuft-<port>.yaml` for the engine double served as a third-party module; returns its path. */
export function writeTuftConfig(c: TuftConfigInput): string {
  const options = { vocab_size: VOCAB, max_context: 128, ...c.engine }
  const config = {
    host: '127.0.0.1',
    port: c.port,
    log_level: 'info',
    checkpoint_dir: join(c.dir, 'checkpoints'),
    model_cache_dir: join(c.dir, 'models'),
    authorized_users: { [ALICE]: 'alice', [BOB]: 'bob' },
    supported_models: [
      {
        model_name: MODEL,
        model_path: c.dir,
        max_model_len: 128,
        training: { provider: PROVIDER, options },
        sampling: { provider: PROVIDER, options },
        ...c.model,
      },
    ],
    persistence: c.persistence,
    server: { long_poll_timeout_ms: 2000, seq_gap_timeout_ms: 2000, shutdown_grace_ms: 2000 },
    ...(c.telemetry === undefined ? {} : { telemetry: c.telemetry }),
  }
  const path = join(c.dir, `tuft-${c.port}.yaml`)
  writeFileSync(path, stringify(config))
  return path
}

export interface TuftProcess {
  baseUrl: string
  proc: ChildProcess
  output(): string
  /** kill -9: no shutdown hooks, no lease release, half-written files stay as they are. */
  crash(): Promise<void>
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>
}

function spawnTuft(
  args: string[],
  cwd: string,
  env: Record<string, string>,
): { proc: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/tuft.js'), ...args], {
    cwd,
    env: { ...process.env, TUFT_HOST: '', TUFT_PORT: '', TUFT_CONFIG: '', ...env },
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
  return { proc, out: () => out, exited }
}

/** The address `tuft` listens on, once its output says all models are loaded; undefined before. */
export function readyAddress(output: string): string | undefined {
  if (!output.includes('"tuft ready: all models loaded"')) return undefined
  const listening = output.split('\n').find((l) => l.includes('"tuft listening"'))
  return listening === undefined ? undefined : (JSON.parse(listening) as { address: string }).address
}

/** Boots `tuft --config path` (with `env` added to the environment) and waits until its models are loaded. */
export async function startTuft(
  configPath: string,
  cwd: string,
  env: Record<string, string> = {},
): Promise<TuftProcess> {
  const { proc, out, exited } = spawnTuft(['--config', configPath], cwd, env)
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tuft did not become ready:\n${out()}`)), 60_000)
    const check = () => {
      const address = readyAddress(out())
      if (address === undefined) return
      clearTimeout(timer)
      proc.stdout!.off('data', check)
      resolve(address)
    }
    proc.stdout!.on('data', check)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`tuft exited with ${code}:\n${out()}`))
    })
  })
  return {
    baseUrl,
    proc,
    output: out,
    async crash() {
      proc.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      return exited
    },
  }
}

/** Runs the command to completion (a boot that must fail, a subcommand). */
export async function runTuft(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; output: string }> {
  const { out, exited } = spawnTuft(args, cwd, env)
  const code = await exited
  return { code, output: out() }
}

// ---- raw Tinker calls (the request ids stay visible) ----

export async function post(baseUrl: string, path: string, body: unknown, apiKey = ALICE): Promise<Response> {
  const raw = Buffer.isBuffer(body)
  return fetch(`${baseUrl}/api/v1/${path}`, {
    method: 'POST',
    headers: {
      'x-api-key': apiKey,
      'content-type': raw ? 'application/x-protobuf' : 'application/json',
    },
    body: raw ? body : JSON.stringify(body),
  })
}

/** Submits and returns the request id (throws on a non-200 answer). */
export async function submit(baseUrl: string, path: string, body: unknown, apiKey = ALICE): Promise<string> {
  const res = await post(baseUrl, path, body, apiKey)
  const text = await res.text()
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${text}`)
  return (JSON.parse(text) as { request_id: string }).request_id
}

export function fwdBwdBody(modelId: string, seqId: number, tokens: number[], forwardOnly = false): Buffer {
  return encodeForwardBackwardRequest({
    modelId,
    seqId,
    lossFn: 'cross_entropy',
    lossFnConfig: {},
    forwardOnly,
    data: [datumFromTokens(tokens)],
  })
}

export type Settled =
  | { ok: true; body: Buffer; type: string }
  | { ok: false; error: string; category: string }

/** Long-polls until the future settles; throws after `deadlineMs` (a hanging future) or on 410. */
export async function settle(
  baseUrl: string,
  id: string,
  apiKey = ALICE,
  deadlineMs = 15_000,
): Promise<Settled> {
  const deadline = Date.now() + deadlineMs
  while (Date.now() < deadline) {
    const res = await fetch(`${baseUrl}/api/v1/retrieve_future`, {
      method: 'POST',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json', accept: 'application/x-protobuf' },
      body: JSON.stringify({ request_id: id }),
    })
    const type = res.headers.get('content-type') ?? ''
    const body = Buffer.from(await res.arrayBuffer())
    if (res.status !== 200) throw new Error(`retrieve_future ${id}: HTTP ${res.status} ${body.toString()}`)
    if (type.includes('json')) {
      const json = JSON.parse(body.toString()) as { type?: string; error?: string; category?: string }
      if (json.type === 'try_again') continue
      if (json.error !== undefined) return { ok: false, error: json.error, category: json.category ?? '' }
    }
    return { ok: true, body, type }
  }
  throw new Error(`future ${id} did not settle within ${deadlineMs} ms`)
}

/** The summed loss of a settled forward / forward_backward future. */
export function lossOf(s: Settled): number {
  if (!s.ok) throw new Error(`forward_backward failed: ${s.error}`)
  return decodeForwardBackwardOutput(s.body).metrics['loss:sum']!
}
