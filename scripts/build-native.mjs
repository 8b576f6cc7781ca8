// Builds the native engine (engines/native) with cmake-js, offline, and reports what it built.
// Run by `npm ci` / `npm run build`; extra arguments go to cmake-js (e.g. `-- --CDENGINE_CUDA=OFF`).
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const ROOT = new URL('..', import.meta.url).pathname
const NATIVE = `${ROOT}engines/native`
const ADDON = `${NATIVE}/build/Release/tuft_engine.node`

function fail(message) {
  console.error(`build-native: ${message}`)
  process.exit(1)
}

if (!existsSync(`${NATIVE}/CMakeLists.txt`)) fail(`${NATIVE}/CMakeLists.txt is missing: incomplete checkout`)
if (!existsSync(`${NATIVE}/package.json`))
  fail(`${NATIVE}/package.json is missing: cmake-js would try to download Node headers`)
const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' })
if (cmake.error || cmake.status !== 0) {
  fail(
    'cmake was not found: install cmake, make and a C++17 compiler (Debian: apt-get install cmake g++ make)',
  )
}

const cmakeJs = `${ROOT}node_modules/cmake-js/bin/cmake-js`
if (!existsSync(cmakeJs)) fail('cmake-js is not installed: run npm ci first')
const jobs = String(Math.min(availableParallelism(), 8))
const args = [cmakeJs, 'compile', '--directory', NATIVE, '--parallel', jobs, ...process.argv.slice(2)]
console.log(`build-native: ${cmake.stdout.split('\n')[0]}; cmake-js compile with ${jobs} jobs`)
const started = Date.now()
const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' })
if (result.error) fail(`cannot run cmake-js: ${result.error.message}`)
if (result.status !== 0)
  fail(`the native build failed (cmake-js exit status ${result.status}); see the output above`)
if (!existsSync(ADDON)) fail(`the build succeeded but ${ADDON} was not produced`)
const seconds = ((Date.now() - started) / 1000).toFixed(1)
const mib = (statSync(ADDON).size / 2 ** 20).toFixed(1)
console.log(`build-native: built ${ADDON} (${mib} MiB) in ${seconds} s`)
