// Builds the native engine (engines/native) with cmake-js, offline, and reports what it built.
// Run by `npm ci` / `npm run build` and when the package is installed; extra arguments go to cmake-js
// (e.g. `-- --CDENGINE_CUDA=OFF`). Installed as a dependency (under node_modules/), a failed build only
// warns: tuft/client and tuft/engine work without the addon, and the native provider then says it is
// not built. In the repository a failed build fails.
import { spawnSync } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { dirname } from 'node:path'

const ROOT = new URL('..', import.meta.url).pathname
const NATIVE = `${ROOT}engines/native`
const ADDON = `${NATIVE}/build/Release/tuft_engine.node`
const AS_DEPENDENCY = ROOT.split('/').includes('node_modules')
// Resolved like imports, so that a consumer's hoisted node_modules/ is found too.
const require = createRequire(import.meta.url)

function fail(message) {
  console.error(`build-native: ${message}`)
  if (AS_DEPENDENCY)
    console.error('build-native: continuing without the native engine (installed as a dependency)')
  process.exit(AS_DEPENDENCY ? 0 : 1)
}

function resolved(specifier) {
  try {
    return require.resolve(specifier)
  } catch {
    return null
  }
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

const cmakeJs = resolved('cmake-js/bin/cmake-js')
if (cmakeJs === null) fail('cmake-js is not installed: run npm ci first')
const napi = resolved('node-addon-api/package.json')
if (napi === null) fail('node-addon-api is not installed: run npm ci first')
const jobs = String(Math.min(availableParallelism(), 8))
const args = [
  cmakeJs,
  'compile',
  '--directory',
  NATIVE,
  '--parallel',
  jobs,
  `--CDNODE_ADDON_API_DIR=${dirname(napi)}`,
  ...process.argv.slice(2),
]
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
