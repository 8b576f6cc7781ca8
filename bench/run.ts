// Runs the benchmarks: `npm run bench` runs all of them, `npm run bench -- server sampling` the named ones.
// Each benchmark is bench/<name>.ts, prints its own figures and exits non-zero on failure.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'

const dir = new URL('.', import.meta.url).pathname
const available = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
  .map((f) => f.slice(0, -3))
  .sort()
const chosen = process.argv.length > 2 ? process.argv.slice(2) : available
const unknown = chosen.filter((name) => !available.includes(name))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`)
  process.exit(2)
}
for (const name of chosen) {
  console.log(`\n=== bench/${name} ===`)
  const result = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${name}.ts`], { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
