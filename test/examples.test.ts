// The examples run against the real server on the embedded model and print a loss (SFT) or a reward
// (RL) per step: the TypeScript ones always, the Python ones where a Python with the Tinker SDK is
// installed (skipped with the reason otherwise).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { after, before, test } from 'node:test'
import { type NativeServer, startNativeTuft, USERS } from './helpers/native-server.js'

const ROOT = new URL('../', import.meta.url).pathname
const PYTHON = process.env.PYTHON ?? 'python3'

let server: NativeServer

before(async () => {
  server = await startNativeTuft()
})

after(async () => {
  await server.stop()
})

/** Runs an example to completion with a few steps; returns what it printed. */
function run(command: string, args: readonly string[], steps: number): string {
  const env = { ...process.env, TUFT_BASE_URL: server.baseUrl, TUFT_API_KEY: USERS.ann, STEPS: String(steps) }
  const r = spawnSync(command, args, { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, `${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

const values = (out: string, name: string) =>
  [...out.matchAll(new RegExp(`^step +\\d+ .*${name} (-?[\\d.]+)`, 'gm'))].map((m) => Number(m[1]))

function checkSft(out: string): void {
  const losses = values(out, 'loss')
  assert.equal(losses.length, 10, out)
  assert.ok(losses.at(-1)! < losses[0]! / 2, `the loss did not fall:\n${out}`)
}

function checkRl(out: string): void {
  const rewards = values(out, 'reward')
  assert.equal(rewards.length, 3, out)
  assert.ok(
    rewards.every((r) => r >= 0 && r <= 1),
    out,
  )
}

const tsx = (file: string) => [process.execPath, ['--import', 'tsx', file]] as const

test('examples/sft.ts prints a falling loss per step', () => {
  checkSft(run(...tsx('examples/sft.ts'), 10))
})

test('examples/rl.ts prints a reward per step', () => {
  checkRl(run(...tsx('examples/rl.ts'), 3))
})

const sdk = spawnSync(PYTHON, ['-c', 'import tinker'], { encoding: 'utf8' })
const noSdk =
  sdk.status === 0
    ? false
    : `no Python with the tinker SDK (${PYTHON}: ${sdk.error?.message ?? sdk.stderr.trim().split('\n').at(-1)})`
if (noSdk) console.log(`# Python examples skipped: ${noSdk}`)

test('examples/sft.py prints a falling loss per step', { skip: noSdk }, () => {
  checkSft(run(PYTHON, ['examples/sft.py'], 10))
})

test('examples/rl.py prints a reward per step', { skip: noSdk }, () => {
  checkRl(run(PYTHON, ['examples/rl.py'], 3))
})
