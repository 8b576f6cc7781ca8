// Runs the native engine's C++ test binaries (built by `npm run build` into engines/native/build) so
// that `npm test` covers the C++ suite; each binary gets the reference fixture directory.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, it } from 'node:test'

const NATIVE = resolve(import.meta.dirname, '..')
const FIXTURES = resolve(NATIVE, '../../test/fixtures/reference')
const BINARIES = ['test_ops', 'test_reference', 'test_engine', 'test_backend_ops']

function findBinary(name: string): string | undefined {
  return [join(NATIVE, 'build', name), join(NATIVE, 'build', 'Release', name)].find((p) => existsSync(p))
}

describe('native engine C++ tests', () => {
  for (const name of BINARIES) {
    it(name, () => {
      const bin = findBinary(name)
      assert.ok(bin, `${name} is not built: run npm run build (cmake-js builds the C++ tests with the addon)`)
      assert.ok(existsSync(FIXTURES), `reference fixtures missing at ${FIXTURES}`)
      const r = spawnSync(bin, [FIXTURES], { encoding: 'utf8', timeout: 15 * 60_000 })
      const output = `${r.stdout ?? ''}${r.stderr ?? ''}`
      assert.equal(r.error, undefined, `${name} could not run: ${r.error?.message}`)
      assert.equal(r.status, 0, `${name} failed (exit ${r.status}, signal ${r.signal}):\n${output}`)
    })
  }
})
