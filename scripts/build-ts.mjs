// Compiles the published entry points (tuft/client, tuft/engine, tuft/engines/native) to JavaScript +
// .d.ts in dist/ (tsconfig.build.json), and copies the data files they read at run time. Run by
// `npm run build`, and by `prepare` (so `npm ci` and `npm pack` always have a fresh dist/).
import { spawnSync } from 'node:child_process'
import { copyFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'

const ROOT = new URL('..', import.meta.url).pathname
/** Beside the compiled module that reads it (core/wire/proto-root.ts). */
const DATA = ['core/wire/tinker_public.proto']

let tsc
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
} catch {
  // A production install of a checkout (npm ci --omit=dev): the server runs from the sources.
  console.warn('build-ts: typescript is not installed, so dist/ (tuft/client, tuft/engine) is not built')
  process.exit(0)
}
// A fresh dist/: a module renamed or removed in the sources must not linger in the package.
rmSync(`${ROOT}dist`, { recursive: true, force: true })
const started = Date.now()
const result = spawnSync(process.execPath, [tsc, '-p', `${ROOT}tsconfig.build.json`], { stdio: 'inherit' })
if (result.status !== 0) {
  console.error(`build-ts: tsc failed (exit status ${result.status})`)
  process.exit(1)
}
for (const file of DATA) copyFileSync(`${ROOT}${file}`, `${ROOT}dist/${file}`)
console.log(`build-ts: compiled dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`)
