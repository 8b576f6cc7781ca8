// Loads the configuration: cosmiconfig (or an explicit path) → ${env:NAME} interpolation → defaults →
// schema check (unknown keys rejected with their path) → path expansion → frozen object.

import { homedir } from 'node:os'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { cosmiconfig } from 'cosmiconfig'
import { parse as parseYaml } from 'yaml'
import { tuftError } from '../core/errors.js'
import { type TuftConfig, TuftConfigSchema } from './schema.js'

export const SEARCH_PLACES = [
  'tuft.config.yaml',
  'tuft.config.yml',
  'tuft.config.json',
  '.tuftrc',
  '.tuftrc.yaml',
  '.tuftrc.yml',
  '.tuftrc.json',
]

export interface LoadConfigOptions {
  /** Explicit file (--config); otherwise the search places are tried from cwd upwards. */
  configPath?: string
  cwd?: string
  env?: Record<string, string | undefined>
  /** Applied over the file (CLI flags, TUFT_* variables), before defaults and the check. */
  overrides?: Record<string, unknown>
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

function interpolate(node: unknown, env: Record<string, string | undefined>, path: string): unknown {
  if (typeof node === 'string') {
    return node.replace(ENV_REF, (_match, name: string, fallback: string | undefined) => {
      const value = env[name]
      if (value !== undefined) return value
      if (fallback !== undefined) return fallback
      throw tuftError('TUFT_CONFIG', `Config ${path || '/'}: environment variable ${name} is not set`)
    })
  }
  if (Array.isArray(node)) return node.map((item, i) => interpolate(item, env, `${path}/${i}`))
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [key, interpolate(value, env, `${path}/${key}`)]),
    )
  }
  return node
}

function mergeDeep(base: unknown, over: unknown): unknown {
  if (over === undefined) return base
  const isPlain = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
  if (!isPlain(base) || !isPlain(over)) return over
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) out[key] = mergeDeep(base[key], value)
  return out
}

function expandPath(path: string, baseDir: string): string {
  const home = path === '~' || path.startsWith('~/') ? homedir() + path.slice(1) : path
  return isAbsolute(home) ? home : resolve(baseDir, home)
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child)
    Object.freeze(value)
  }
  return value
}

async function readFile(opts: LoadConfigOptions): Promise<{ raw: unknown; file?: string }> {
  const explorer = cosmiconfig('tuft', {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: 'project',
    loaders: {
      '.yaml': (_f, text) => parseYaml(text),
      '.yml': (_f, text) => parseYaml(text),
      noExt: (_f, text) => parseYaml(text),
    },
  })
  try {
    const found = opts.configPath
      ? await explorer.load(resolve(opts.cwd ?? process.cwd(), opts.configPath))
      : await explorer.search(opts.cwd ?? process.cwd())
    if (!found || found.isEmpty) return { raw: {}, ...(found ? { file: found.filepath } : {}) }
    return { raw: found.config, file: found.filepath }
  } catch (err) {
    const where = opts.configPath ?? 'the searched config files'
    throw tuftError('TUFT_CONFIG', `Cannot read config ${where}: ${(err as Error).message}`, { cause: err })
  }
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<TuftConfig> {
  const env = opts.env ?? process.env
  const { raw, file } = await readFile(opts)
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw tuftError('TUFT_CONFIG', `Config ${file}: the top level must be a mapping of keys`)
  }
  const merged = mergeDeep(interpolate(raw, env, ''), opts.overrides)
  const withDefaults = Value.Default(TuftConfigSchema, structuredClone(merged))
  const errors = [...Value.Errors(TuftConfigSchema, withDefaults)]
  if (errors.length > 0) {
    const lines = errors
      .slice(0, 10)
      .map((e) => `  ${e.path || '/'}: ${e.message === 'Unexpected property' ? 'unknown key' : e.message}`)
    throw tuftError('TUFT_CONFIG', `Invalid config${file ? ` ${file}` : ''}:\n${lines.join('\n')}`)
  }
  const config = withDefaults as TuftConfig
  const baseDir = file ? dirname(file) : (opts.cwd ?? process.cwd())
  config.checkpoint_dir = expandPath(config.checkpoint_dir, baseDir)
  config.model_cache_dir = expandPath(config.model_cache_dir, baseDir)
  for (const model of config.supported_models) model.model_path = expandPath(model.model_path, baseDir)
  config.openai_api.lora_roots = config.openai_api.lora_roots.map((d) => expandPath(d, baseDir))
  if (config.persistence.file_path)
    config.persistence.file_path = expandPath(config.persistence.file_path, baseDir)
  return deepFreeze(config)
}
