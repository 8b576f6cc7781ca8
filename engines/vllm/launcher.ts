// Runs `vllm serve` for a model and keeps it running: waits for /health (progress in the log), restarts
// it with exponential backoff after it exits, and stops it (SIGTERM, then SIGKILL) on close.

import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import type { Logger } from 'pino'
import { tuftError } from '../../core/errors.js'
import type { LaunchConfig } from './options.js'
import type { Replica } from './replica.js'

const POLL_MS = 250
const PROGRESS_EVERY_MS = 10_000
const FIRST_BACKOFF_MS = 500
const STOP_GRACE_MS = 10_000
/** Output lines kept to explain a failed start. */
const TAIL_LINES = 40

/** A free loopback port (the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export class Launcher {
  private child: ChildProcess | null = null
  private stopping = false
  private backoff = FIRST_BACKOFF_MS
  private restartTimer: NodeJS.Timeout | null = null
  private readonly tail: string[] = []

  constructor(
    private readonly launch: LaunchConfig,
    /** The arguments after the command: `serve <model_path> --flags`. */
    private readonly argv: string[],
    private readonly replica: Replica,
    private readonly log: Logger,
  ) {}

  /** Starts the server and resolves once it is healthy; rejects (with its last output) if it is not in time. */
  async start(): Promise<void> {
    const exited = this.spawn()
    const ready = await Promise.race([
      this.waitHealthy(this.launch.startup_timeout_ms),
      exited.then(() => false),
    ])
    if (!ready) {
      await this.stop()
      throw tuftError(
        'TUFT_CONFIG',
        `vLLM (${this.commandLine()}) did not become healthy; its last output:\n${this.tail.join('\n')}`,
      )
    }
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.restartTimer) clearTimeout(this.restartTimer)
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
    await gone
    clearTimeout(timer)
  }

  private commandLine(): string {
    return [this.launch.command].flat().concat(this.argv).join(' ')
  }

  /** Spawns the server; resolves when it exits (then, unless stopping, a restart is scheduled). */
  private spawn(): Promise<void> {
    const [command, ...lead] = [this.launch.command].flat()
    const child = spawn(command!, [...lead, ...this.argv], {
      env: { ...process.env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: '1', ...this.launch.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = child
    this.log.info({ pid: child.pid, command: this.commandLine() }, 'vLLM server starting')
    const keep = (b: Buffer) => {
      for (const line of b.toString().split('\n')) {
        if (line.trim() === '') continue
        this.tail.push(line)
        if (this.tail.length > TAIL_LINES) this.tail.shift()
        this.log.debug({ vllm: line }, 'vLLM output')
      }
    }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    return new Promise((resolve) => {
      child.once('error', (err) => {
        this.tail.push(String(err))
        resolve()
      })
      child.once('exit', (code, signal) => {
        this.replica.down = true
        // Whatever it had loaded is gone with it.
        this.replica.loaded.clear()
        if (!this.stopping) this.scheduleRestart(code, signal)
        resolve()
      })
    })
  }

  private scheduleRestart(code: number | null, signal: string | null): void {
    const delay = this.backoff
    this.backoff = Math.min(this.backoff * 2, this.launch.max_restart_backoff_ms)
    this.log.warn(
      { code, signal, restartInMs: delay, output: this.tail.slice(-5) },
      'vLLM server exited; restarting',
    )
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return
      void this.spawn()
      void this.waitHealthy(this.launch.startup_timeout_ms).then((ok) => {
        if (ok) {
          this.backoff = FIRST_BACKOFF_MS
          this.log.info({ url: this.replica.url }, 'vLLM server is back')
        }
      })
    }, delay)
    this.restartTimer.unref()
  }

  /** Polls /health until it answers 200 (true), the child exits or the time is up (false). */
  private async waitHealthy(timeoutMs: number): Promise<boolean> {
    const child = this.child
    const started = Date.now()
    let reported = started
    while (Date.now() - started < timeoutMs) {
      if (this.stopping || child !== this.child || child?.exitCode !== null || child.signalCode !== null)
        return false
      if (await this.replica.healthy()) {
        this.log.info({ url: this.replica.url, ms: Date.now() - started }, 'vLLM server ready')
        return true
      }
      if (Date.now() - reported >= PROGRESS_EVERY_MS) {
        reported = Date.now()
        this.log.info(
          { url: this.replica.url, waitedS: Math.round((reported - started) / 1000) },
          'waiting for vLLM to be ready',
        )
      }
      await new Promise((r) => setTimeout(r, POLL_MS))
    }
    return false
  }
}
