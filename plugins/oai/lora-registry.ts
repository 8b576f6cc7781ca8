// Adapters loaded at runtime through vLLM's /v1/load_lora_adapter (openai_api.runtime_lora_updating):
// name → adapter directory under one of openai_api.lora_roots, for operators only. Like vLLM's own
// registry it lives in memory: a restart forgets every adapter, and clients load them again.

import { realpath } from 'node:fs/promises'
import { relative, resolve } from 'node:path'
import { tuftError } from '../../core/errors.js'
import type { LocalAdapter } from '../../core/services/adapter-cache.js'
import type { ModelHost } from '../../core/services/models.js'

export interface RuntimeLora {
  name: string
  /** The directory as the operator named it (vLLM lists it as the model card's `root`). */
  path: string
  host: ModelHost
  ref: LocalAdapter
  createdAt: number
}

export class LoraRegistry {
  private readonly adapters = new Map<string, RuntimeLora>()

  constructor(private readonly roots: readonly string[]) {}

  get(name: string): RuntimeLora | undefined {
    return this.adapters.get(name)
  }

  list(): RuntimeLora[] {
    return [...this.adapters.values()]
  }

  /** The adapter directory, resolved through links, when it lies under a configured root; else a 400. */
  async checkPath(path: string): Promise<string> {
    const real = await realpath(resolve(path)).catch(() => {
      throw tuftError('TUFT_NOT_FOUND', `No adapter found at '${path}'`)
    })
    for (const root of this.roots) {
      const rel = relative(await realpath(root).catch(() => resolve(root)), real)
      if (rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'))) return real
    }
    throw tuftError('TUFT_BAD_REQUEST', `'${path}' is not under any of openai_api.lora_roots`)
  }

  /** vLLM's 400 when the name is taken (a load without load_inplace). */
  checkFree(name: string): void {
    if (this.adapters.has(name)) {
      throw tuftError('TUFT_BAD_REQUEST', `The lora adapter '${name}' has already been loaded.`)
    }
  }

  add(lora: RuntimeLora): void {
    this.checkFree(lora.name)
    this.adapters.set(lora.name, lora)
  }

  remove(name: string): RuntimeLora {
    const lora = this.adapters.get(name)
    if (!lora) throw tuftError('TUFT_NOT_FOUND', `The lora adapter '${name}' cannot be found.`)
    this.adapters.delete(name)
    return lora
  }
}
