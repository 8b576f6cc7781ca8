// Native engine training throughput: runs engines/native/build/bench_engine (built by `npm run build`)
// and prints its figures. Arguments go to the binary: --layers N (shapes), --fused-layers N (the fused
// comparison, all 28 by default), --threads N, --reps N, --budget S, --only shapes|fused.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

const build = new URL('../engines/native/build', import.meta.url).pathname
const bin = [join(build, 'bench_engine'), join(build, 'Release', 'bench_engine')].find((p) => existsSync(p))
if (!bin) {
  console.error(`bench_engine is not built under ${build}: run npm run build first`)
  process.exit(1)
}
const result = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' })
if (result.error) console.error(`cannot run ${bin}: ${result.error.message}`)
process.exit(result.status ?? 1)
