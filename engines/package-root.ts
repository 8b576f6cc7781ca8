// The tuft package's root directory, whether this code runs from its TypeScript source (engines/…)
// or from the compiled copy in dist/ (dist/engines/…): files that tsc does not copy (the native addon,
// the reference fixtures) are found from there.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tuftError } from '../core/errors.js'

let root: string | undefined

export function packageRoot(): string {
  if (root !== undefined) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const manifest = join(dir, 'package.json')
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'tuft'
    ) {
      root = dir
      return dir
    }
    const parent = dirname(dir)
    if (parent === dir)
      throw tuftError('TUFT_INTERNAL', `no tuft package.json above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
}
