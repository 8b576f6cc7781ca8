// SamplingEngine on vLLM servers: each request goes to the replica with the least outstanding work;
// core stages adapters as PEFT files through this engine's staging (a copy in adapter_dir, a unique
// name per adapter); they are loaded on a replica on their first use there, unloaded when the server's
// adapter cache evicts them, and loaded again, once, when a replica answers that it does not know them
// (it restarted).

import { basename } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type {
  AdapterId,
  AdapterRef,
  EngineInfo,
  AdapterStaging as EngineStaging,
  SampleJob,
  SampleResult,
  SamplingEngine,
} from '../../core/engine.js'
import { isTuftError, tuftError } from '../../core/errors.js'
import type { Launcher } from './launcher.js'
import { ModelNotFound, type Replica } from './replica.js'
import { type CompletionAnswer, completionRequest, sampleResultOf } from './request.js'
import type { AdapterStaging } from './staging.js'

interface Staged {
  name: string
  path: string
}

export interface VllmEngineOptions {
  info: EngineInfo
  replicas: Replica[]
  launchers: Launcher[]
  staging: AdapterStaging
  /** The base model's name on the servers. */
  model: string
  maxLogprobs: number
}

export class VllmSamplingEngine implements SamplingEngine {
  readonly info: EngineInfo
  private readonly adapters = new Map<AdapterId, Staged>()

  constructor(private readonly opts: VllmEngineOptions) {
    this.info = opts.info
  }

  /** Core stages an adapter's PEFT files into adapter_dir; the URI is the path the servers see. */
  readonly staging: EngineStaging = {
    stage: async (_id, dir) => pathToFileURL((await this.opts.staging.stage(dir)).path).href,
    release: async (_id, uri) => this.opts.staging.release(basename(fileURLToPath(uri))),
  }

  async loadAdapter(ref: AdapterRef): Promise<void> {
    if (ref.kind === 'snapshot') {
      throw tuftError('TUFT_ENGINE', 'vLLM loads adapters from PEFT files, not from in-process snapshots')
    }
    const path = fileURLToPath(ref.uri)
    if (!this.adapters.has(ref.id)) this.adapters.set(ref.id, { name: basename(path), path })
  }

  async unloadAdapter(ref: AdapterRef): Promise<void> {
    const staged = this.adapters.get(ref.id)
    if (!staged) return
    this.adapters.delete(ref.id)
    await Promise.all(this.opts.replicas.map((r) => this.unloadFrom(r, staged.name)))
  }

  async sample(job: SampleJob): Promise<SampleResult> {
    const staged = job.adapter ? this.adapters.get(job.adapter.id) : undefined
    if (job.adapter && !staged) throw tuftError('TUFT_INTERNAL', `Adapter '${job.adapter.id}' is not loaded`)
    const replica = this.pick()
    const work = job.prompt.length + job.maxTokens * job.numSamples
    replica.outstanding += work
    try {
      const body = completionRequest(
        job,
        staged?.name ?? this.opts.model,
        this.info.maxContext,
        this.opts.maxLogprobs,
      )
      for (let attempt = 0; ; attempt++) {
        if (staged) await this.ensureLoaded(replica, staged)
        try {
          const answer = JSON.parse(
            await replica.post('/v1/completions', body, job.signal),
          ) as CompletionAnswer
          return sampleResultOf(job, answer)
        } catch (err) {
          if (!(err instanceof ModelNotFound)) throw err
          if (!staged || attempt > 0) throw tuftError('TUFT_ENGINE', err.message, { cause: err })
          // The server forgot the adapter (it restarted): load it again and retry once.
          replica.loaded.delete(staged.name)
        }
      }
    } finally {
      replica.outstanding -= work
    }
  }

  async health(): Promise<{ ok: boolean; message?: string }> {
    const up = this.opts.replicas.filter((r) => !r.down)
    if (up.length > 0) return { ok: true }
    return {
      ok: false,
      message: `no vLLM server reachable (${this.opts.replicas.map((r) => r.url).join(', ')})`,
    }
  }

  async close(): Promise<void> {
    for (const staged of this.adapters.values()) {
      // A shared server keeps running: leave it none of this process's adapters.
      if (this.opts.launchers.length === 0)
        await Promise.all(this.opts.replicas.map((r) => this.unloadFrom(r, staged.name)))
      await this.opts.staging.release(staged.name)
    }
    this.adapters.clear()
    await Promise.all(this.opts.launchers.map((l) => l.stop()))
  }

  /** The reachable replica with the least outstanding work (any replica when none is known reachable). */
  private pick(): Replica {
    const up = this.opts.replicas.filter((r) => !r.down)
    const candidates = up.length > 0 ? up : this.opts.replicas
    return candidates.reduce((best, r) => (r.outstanding < best.outstanding ? r : best))
  }

  private ensureLoaded(replica: Replica, staged: Staged): Promise<void> {
    let loading = replica.loaded.get(staged.name)
    if (!loading) {
      const body = JSON.stringify({ lora_name: staged.name, lora_path: staged.path })
      loading = replica.post('/v1/load_lora_adapter', body).then(
        () => undefined,
        (err: unknown) => {
          // Loaded already (this process lost track of it, e.g. across a brief outage): fine as it is.
          if (isTuftError(err) && /already been loaded/.test(err.message)) return
          replica.loaded.delete(staged.name)
          if (err instanceof ModelNotFound) {
            throw tuftError(
              'TUFT_ENGINE',
              `${err.message} (is adapter_dir readable by the vLLM server at adapter_dir_on_server?)`,
            )
          }
          throw err
        },
      )
      replica.loaded.set(staged.name, loading)
    }
    return loading
  }

  private async unloadFrom(replica: Replica, name: string): Promise<void> {
    if (!replica.loaded.has(name)) return
    replica.loaded.delete(name)
    await replica.post('/v1/unload_lora_adapter', JSON.stringify({ lora_name: name })).catch(() => undefined)
  }
}
