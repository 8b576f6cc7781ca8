// Builds the native engine (engines/native) with cmake-js, offline. Run by `npm ci` / `npm run build`.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const ROOT = new URL('..', import.meta.url).pathname
const NATIVE = `${ROOT}engines/native`

if (existsSync(`${NATIVE}/CMakeLists.txt`)) {
  const cmakeJs = `${ROOT}node_modules/cmake-js/bin/cmake-js`
  const result = spawnSync(process.execPath, [cmakeJs, 'compile', '--directory', NATIVE], {
    cwd: ROOT,
    stdio: 'inherit',
  })
  process.exit(result.status ?? 1)
}
