// The `tuft` command: loads the config (file, TUFT_* variables, flags), builds the app, listens, logs
// model loading progress, and shuts down gracefully on SIGINT/SIGTERM. Without authorized_users only
// the local dev key works, so it refuses to listen on anything but loopback.

import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/load.js'
import type { TuftConfig } from '../config/schema.js'
import { isTuftError, tuftError } from '../core/errors.js'
import { buildApp } from '../plugins/app.js'
import { createLogger } from '../plugins/telemetry/logging.js'
import { runClearPersistence } from './clear-persistence.js'

const USAGE = `Usage: tuft [options]

Runs the TuFT server: a multi-tenant Tinker API for LoRA fine-tuning and sampling.

Options (each also read from the environment variable in brackets):
  --host HOST             address to listen on (default 127.0.0.1)        [TUFT_HOST]
  --port PORT             port to listen on (default 10610)               [TUFT_PORT]
  --config PATH           config file (default: tuft.config.yaml etc.)    [TUFT_CONFIG]
  --log-level LEVEL       fatal|error|warn|info|debug|trace|silent        [TUFT_LOG_LEVEL]
  --checkpoint-dir DIR    where checkpoints are written                   [TUFT_CHECKPOINT_DIR]
  -h, --help              show this help
  -v, --version           show the version

Commands:
  tuft clear-persistence [--config PATH]   reset the persisted state (see tuft clear-persistence -h)
`

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

interface CliOptions {
  configPath: string | undefined
  overrides: Record<string, unknown>
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      'checkpoint-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    strict: true,
  })
}

/** Flags win over TUFT_* variables, which win over the config file. */
function parseCli(argv: string[], env: Record<string, string | undefined>): CliOptions | 'help' | 'version' {
  let values: ReturnType<typeof parseFlags>['values']
  try {
    values = parseFlags(argv).values
  } catch (err) {
    throw tuftError('TUFT_CONFIG', `${(err as Error).message} (see tuft --help)`)
  }
  if (values.help) return 'help'
  if (values.version) return 'version'
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined)
  const overrides: Record<string, unknown> = {}
  const host = pick(values.host, 'TUFT_HOST')
  const port = pick(values.port, 'TUFT_PORT')
  const logLevel = pick(values['log-level'], 'TUFT_LOG_LEVEL')
  const checkpointDir = pick(values['checkpoint-dir'], 'TUFT_CHECKPOINT_DIR')
  if (host !== undefined) overrides.host = host
  if (port !== undefined) {
    const n = Number(port)
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw tuftError('TUFT_CONFIG', `Invalid port '${port}'`)
    overrides.port = n
  }
  if (logLevel !== undefined) overrides.log_level = logLevel
  if (checkpointDir !== undefined) overrides.checkpoint_dir = resolve(checkpointDir)
  return { configPath: pick(values.config, 'TUFT_CONFIG'), overrides }
}

function checkExposure(config: TuftConfig): void {
  if (Object.keys(config.authorized_users).length === 0 && !isLoopback(config.host)) {
    throw tuftError(
      'TUFT_CONFIG',
      `Refusing to listen on ${config.host}: no authorized_users are configured, so only the local dev key works. ` +
        'Configure authorized_users (tml-... keys) or listen on 127.0.0.1.',
    )
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === 'clear-persistence') return runClearPersistence(process.argv.slice(3))
  const parsed = parseCli(process.argv.slice(2), process.env)
  if (parsed === 'help') {
    process.stdout.write(USAGE)
    return
  }
  if (parsed === 'version') {
    process.stdout.write(`tuft ${version()}\n`)
    return
  }
  const config = await loadConfig({
    ...(parsed.configPath ? { configPath: parsed.configPath } : {}),
    overrides: parsed.overrides,
  })
  checkExposure(config)
  const logger = createLogger(config)
  const configDir = parsed.configPath ? dirname(resolve(parsed.configPath)) : process.cwd()
  const app = await buildApp(config, { configDir, logger })

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    closing = true
    logger.info({ signal }, 'shutting down: finishing queued training work')
    try {
      await app.close()
      process.exit(0)
    } catch (err) {
      logger.error({ err }, 'shutdown failed')
      process.exit(1)
    }
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))

  const address = await app.listen({ host: config.host, port: config.port })
  logger.info({ address, version: version(), models: app.models.list().map((m) => m.name) }, 'tuft listening')
  try {
    await app.models.loadAll()
    logger.info('tuft ready: all models loaded')
  } catch (err) {
    logger.fatal({ err }, 'a configured model failed to load')
    await app.close()
    process.exit(1)
  }
}

main().catch((err: unknown) => {
  const message = isTuftError(err) ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err)
  process.stderr.write(`tuft: ${message}\n`)
  process.exit(isTuftError(err) && err.code === 'TUFT_CONFIG' ? 2 : 1)
})
