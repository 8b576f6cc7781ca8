// The `tuft` command's own behaviour: help, version, and refusing to start with an unsafe or invalid
// configuration (exit code 2 with a message, no listening socket).

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

const BIN = new URL('../bin/tuft.js', import.meta.url).pathname

function tuft(args: string[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tuft-cli-'))
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { ...process.env, TUFT_HOST: '', TUFT_PORT: '', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  })
  return { code: r.status, out: r.stdout, err: r.stderr, dir }
}

test('--help and --version', () => {
  const help = tuft(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.out, /Usage: tuft/)
  assert.match(help.out, /TUFT_CHECKPOINT_DIR/)
  const version = tuft(['--version'])
  assert.equal(version.code, 0)
  assert.match(version.out, /^tuft \d+\.\d+\.\d+/)
})

test('refuses a non-loopback host when no authorized_users are configured (flag or TUFT_HOST)', () => {
  const flag = tuft(['--host', '0.0.0.0', '--port', '0'])
  assert.equal(flag.code, 2)
  assert.match(flag.err, /Refusing to listen on 0\.0\.0\.0/)
  const env = tuft(['--port', '0'], { TUFT_HOST: '10.1.2.3' })
  assert.equal(env.code, 2)
  assert.match(env.err, /Refusing to listen on 10\.1\.2\.3/)
})

test('invalid flags and configs fail with a message', () => {
  const port = tuft(['--port', 'many'])
  assert.equal(port.code, 2)
  assert.match(port.err, /Invalid port 'many'/)
  const dir = mkdtempSync(join(tmpdir(), 'tuft-cli-config-'))
  const config = join(dir, 'bad.yaml')
  writeFileSync(config, 'no_such_key: 1\n')
  const bad = tuft(['--config', config])
  assert.equal(bad.code, 2)
  assert.match(bad.err, /no_such_key: unknown key/)
  const unknownFlag = tuft(['--frobnicate'])
  assert.equal(unknownFlag.code, 2)
  assert.match(unknownFlag.err, /Unknown option '--frobnicate'.*tuft --help/)
})
