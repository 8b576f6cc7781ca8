// The default AdapterStaging (core/engine.ts), for engines that read the server's own files: a PEFT
// directory is handed over as its file: URL and nothing is copied. Engines turn such a URI back into
// a path with localDir.

import { fileURLToPath, pathToFileURL } from 'node:url'
import type { AdapterStaging } from './engine.js'
import { tuftError } from './errors.js'

export const fileStaging: AdapterStaging = {
  async stage(_id, dir) {
    return pathToFileURL(dir).href
  },
  async release() {},
}

/** The directory a `file:` adapter URI names; any other scheme is a 400 for an engine reading local files. */
export function localDir(uri: string): string {
  if (!uri.startsWith('file:'))
    throw tuftError(
      'TUFT_BAD_REQUEST',
      `adapter URI '${uri}' is not a file: URL; this engine reads local files`,
    )
  return fileURLToPath(uri)
}
