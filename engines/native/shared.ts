// One native engine per base model, shared by that model's training and sampling engines (one copy
// of the base weights; training snapshots are visible to sampling). Maps native errors to coded ones.
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { EngineInfo, Manifest } from '../../core/engine.js'
import { isTuftError, type TuftError, tuftError } from '../../core/errors.js'
import type { NativeEngine, NativeModelInfo } from './binding.js'
import { loadTokenBytes } from './token-bytes.js'

/** "src/model/x.cc:42: rank 99 > max" → "rank 99 > max": users get the reason, not our file names. */
function withoutLocation(message: string): string {
  return message.replace(/^[^\s:]+:\d+: /, '')
}

/** te_status names (and the binding's own codes) → coded errors. */
export function engineError(err: unknown): TuftError {
  if (isTuftError(err)) return err
  const code = (err as { code?: unknown } | null)?.code
  const message = err instanceof Error ? err.message : String(err)
  switch (code) {
    case 'TE_EINVAL':
      return tuftError('TUFT_BAD_REQUEST', withoutLocation(message), { cause: err })
    case 'TE_ENOTFOUND':
      return tuftError('TUFT_NOT_FOUND', withoutLocation(message), { cause: err })
    case 'ENGINE_CLOSED':
    case 'ABORTED':
      return tuftError('TUFT_UNAVAILABLE', message, { cause: err })
    default:
      return tuftError('TUFT_ENGINE', `native engine: ${message}`, { cause: err })
  }
}

/** Runs a native call, turning synchronous throws and rejections into coded errors. */
export async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw engineError(err)
  }
}

/** Files under dir (recursively), relative names and sizes. */
export async function manifestOf(dir: string): Promise<Manifest> {
  const files: Manifest['files'] = []
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) await walk(name)
      else files.push({ name, bytes: (await stat(join(dir, name))).size })
    }
  }
  await walk('')
  files.sort((a, b) => a.name.localeCompare(b.name))
  return { files }
}

export class SharedEngine {
  readonly info: EngineInfo
  private refs = 0
  private tokenBytes: Promise<void> | undefined
  private nextRequestId = 1

  constructor(
    readonly native: NativeEngine,
    readonly model: NativeModelInfo,
    readonly modelPath: string,
    maxContext: number,
    maxLoraRank: number,
    /** Tokens per fused forward/backward pass; larger batches are split (losses are sums). */
    readonly maxBatchTokens: number,
    private readonly onClosed: () => void,
  ) {
    this.info = {
      device: model.device,
      vocabSize: model.vocabSize,
      maxContext,
      maxLoraRank,
      arch: model.arch,
    }
  }

  acquire(): void {
    this.refs++
  }

  /** The last holder closes the native engine. */
  async release(): Promise<void> {
    if (--this.refs > 0) return
    this.onClosed()
    await call(() => this.native.close())
  }

  /** Token byte strings for stop strings, handed to the engine once (from the model's tokenizer.json). */
  ensureTokenBytes(): Promise<void> {
    this.tokenBytes ??= (async () => {
      const { bytes, lens } = await loadTokenBytes(
        join(this.modelPath, 'tokenizer.json'),
        this.model.vocabSize,
      )
      await call(() => this.native.setTokenBytes(bytes, lens))
    })()
    return this.tokenBytes
  }

  requestId(): number {
    return this.nextRequestId++
  }
}
