// Starts a real, throw-away redis-server for tests: loopback, a free port, no persistence, a temp dir.
// On a machine without redis-server the Redis suites skip, printing why (`redisSkip`), so that a fresh
// clone's `npm test` passes; with TUFT_REQUIRE_REDIS=1 (CI: .ci/run) they run and fail loudly instead,
// so that Redis coverage is never lost silently.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface TestRedis {
  url: string
  port: number
  /** SIGSTOP: connections stay open and nothing answers, as with a Redis hung or cut off. */
  pause(): void
  /** SIGCONT after pause(). */
  resume(): void
  stop(): Promise<void>
}

const NOT_INSTALLED =
  'redis-server is not installed, so the Redis store cannot be tested. ' +
  'Install it (Debian: apt-get install redis-server; .ci/run does) and run the tests again.'

function redisServerBinary(): string | null {
  for (const candidate of ['/usr/bin/redis-server', 'redis-server']) {
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' })
    if (probe.status === 0) return candidate
  }
  return null
}

export function findRedisServer(): string {
  const bin = redisServerBinary()
  if (bin === null) throw new Error(NOT_INSTALLED)
  return bin
}

/**
 * The `skip` option of every suite that needs redis-server: false where it is installed or required
 * (TUFT_REQUIRE_REDIS=1, then startRedis fails), else the reason node:test prints for the skip.
 */
export const redisSkip: string | false =
  process.env.TUFT_REQUIRE_REDIS === '1' || redisServerBinary() !== null
    ? false
    : `${NOT_INSTALLED} (TUFT_REQUIRE_REDIS=1 makes this a failure)`

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}

export async function startRedis(): Promise<TestRedis> {
  const bin = findRedisServer()
  const dir = await mkdtemp(join(tmpdir(), 'tuft-redis-'))
  let lastError: Error | undefined
  // Another process may take the free port before redis binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawn(
      bin,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    try {
      await waitReady(child)
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        pause: () => child.kill('SIGSTOP'),
        resume: () => child.kill('SIGCONT'),
        stop: () => stop(child, dir),
      }
    } catch (err) {
      lastError = err as Error
      child.kill('SIGKILL')
    }
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(`redis-server did not start: ${lastError?.message}`)
}

function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`not ready after 10 s:\n${output}`)), 10_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code}:\n${output}`))
    })
  })
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit')
    // A paused server would not act on SIGTERM.
    child.kill('SIGCONT')
    child.kill('SIGTERM')
    await exited
  }
  await rm(dir, { recursive: true, force: true })
}
