// `tuft clear-persistence [--config PATH]`: resets the configured persistence namespace (sessions, runs,
// samplers, checkpoint records, futures, leases, the configuration signature) and the durable training
// states under checkpoint_dir. Checkpoint files themselves are left on disk. Stop the servers first.

import { existsSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type Logger, pino } from 'pino'
import { loadConfig } from '../config/load.js'
import type { TuftConfig } from '../config/schema.js'
import { STATE_DIR } from '../core/services/durable-state.js'
import { createStore } from '../persistence/index.js'

export const CLEAR_USAGE = `Usage: tuft clear-persistence [--config PATH]

Deletes every record of the configured persistence namespace (memory: nothing to do; file: the store
directory's contents; redis: the namespace's keys) and the durable training states under
checkpoint_dir/<user>/<run>/${STATE_DIR}. Checkpoint files are kept. Run it while no server uses the store.
`

export interface ClearResult {
  keys: number
  states: number
}

/** Removes `<root>/<user>/<run>/_state` directories; returns how many. */
async function removeStates(root: string): Promise<number> {
  let removed = 0
  const subdirs = async (path: string) =>
    (await readdir(path, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory())
  for (const user of await subdirs(root)) {
    for (const run of await subdirs(join(root, user.name))) {
      const state = join(root, user.name, run.name, STATE_DIR)
      if (existsSync(state)) {
        await rm(state, { recursive: true, force: true })
        removed++
      }
    }
  }
  return removed
}

export async function clearPersistence(config: TuftConfig, log: Logger): Promise<ClearResult> {
  const store = await createStore({ ...config.persistence }, { log })
  let keys = 0
  try {
    for (const { key } of await store.scan('')) if (await store.delete(key)) keys++
  } finally {
    await store.close()
  }
  const states = await removeStates(config.checkpoint_dir)
  return { keys, states }
}

/** The subcommand: parses its own flags, loads the config like the server does, and reports counts. */
export async function runClearPersistence(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(CLEAR_USAGE)
    return
  }
  const configPath = values.config ?? (process.env.TUFT_CONFIG || undefined)
  const config = await loadConfig(configPath ? { configPath } : {})
  const { keys, states } = await clearPersistence(config, pino({ level: 'warn' }))
  process.stdout.write(
    `tuft: cleared persistence namespace '${config.persistence.namespace}' (${config.persistence.mode}): ${keys} records, ${states} training states\n`,
  )
}
