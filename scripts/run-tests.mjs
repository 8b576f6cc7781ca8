// Runs every test of the project with node:test (TypeScript through tsx) and ends with node's
// summary. Node 20 does not expand globs, so the files are listed here. Pass files to run only those.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const ROOT = new URL('..', import.meta.url).pathname
const SKIP = new Set(['node_modules', 'build', 'dist', '.git', '.tuft'])

function findTests(dir) {
  const found = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...findTests(path))
    else if (entry.name.endsWith('.test.ts')) found.push(relative(ROOT, path))
  }
  return found
}

const files = process.argv.length > 2 ? process.argv.slice(2) : findTests(ROOT).sort()
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  cwd: ROOT,
  stdio: 'inherit',
})
process.exit(result.status ?? 1)
