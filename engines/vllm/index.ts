// The built-in `vllm` sampling provider: Tinker sampling on `vllm serve` (pinned to vLLM 0.24's
// OpenAI-compatible API and LoRA endpoints) over HTTP — running replicas named by base_url, or one it
// launches and supervises. Training stays with another provider; its adapters reach vLLM as PEFT files.

import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { EngineContext, EngineInfo, EngineProvider } from '../../core/engine.js'
import { tuftError } from '../../core/errors.js'
import { VllmSamplingEngine } from './engine.js'
import { freePort, Launcher } from './launcher.js'
import { type VllmConfig, VllmConfigSchema } from './options.js'
import { Replica } from './replica.js'
import { AdapterStaging } from './staging.js'

/** The ranks vLLM accepts for --max-lora-rank. */
const VLLM_RANKS = [1, 8, 16, 32, 64, 128, 256, 320, 512]

/** What tuft needs of the model, from its config.json (the server's host has the model directory too). */
async function modelInfo(ctx: EngineContext, url: string): Promise<EngineInfo> {
  const config = JSON.parse(await readFile(join(ctx.modelPath, 'config.json'), 'utf8')) as {
    vocab_size: number
    max_position_embeddings: number
    model_type?: string
  }
  const limit = config.max_position_embeddings
  return {
    device: `vllm ${url}`,
    vocabSize: config.vocab_size,
    maxContext: ctx.maxModelLen > 0 ? Math.min(ctx.maxModelLen, limit) : limit,
    maxLoraRank: ctx.maxLoraRank,
    arch: config.model_type ?? 'unknown',
  }
}

/** `serve <model_path> --flags` for a launched server: LoRA on, logprobs as the native sampler reports them. */
function serveArgs(cfg: VllmConfig, ctx: EngineContext, port: number, model: string): string[] {
  const rank = VLLM_RANKS.find((r) => r >= ctx.maxLoraRank)
  if (rank === undefined)
    throw tuftError('TUFT_CONFIG', `vLLM supports LoRA ranks up to 512, not ${ctx.maxLoraRank}`)
  return [
    'serve',
    ctx.modelPath,
    ...['--host', '127.0.0.1', '--port', String(port), '--served-model-name', model],
    ...['--enable-lora', '--max-lora-rank', String(rank)],
    ...['--max-loras', String(ctx.maxLoras), '--max-cpu-loras', String(ctx.maxLoras)],
    // Tinker's logprobs are the model's own distribution, whatever the temperature (as the native sampler).
    ...['--max-logprobs', String(cfg.max_logprobs), '--logprobs-mode', 'raw_logprobs'],
    ...(ctx.maxModelLen > 0 ? ['--max-model-len', String(ctx.maxModelLen)] : []),
    ...(cfg.api_key ? ['--api-key', cfg.api_key] : []),
    ...(cfg.launch?.args ?? []),
  ]
}

export function createVllmProvider(): EngineProvider<typeof VllmConfigSchema> {
  return {
    name: 'vllm',
    capabilities: {
      // Sampling only: trained adapters arrive as PEFT files, staged into adapter_dir.
      snapshots: 'peft-files',
      sampleFromTrainingSnapshot: false,
      losses: [],
      maxLoraRank: VLLM_RANKS.at(-1)!,
      // Whatever vLLM serves; the reference numerics need a vLLM server, so none are declared here.
      architectures: [],
    },
    configSchema: VllmConfigSchema,
    async createSampling(cfg, ctx) {
      if ((cfg.base_url === undefined) === (cfg.launch === undefined)) {
        throw tuftError(
          'TUFT_CONFIG',
          `Model '${ctx.modelName}': the vllm provider needs base_url or launch (one of them)`,
        )
      }
      const model = cfg.served_model_name ?? ctx.modelName
      const replicas: Replica[] = []
      const launchers: Launcher[] = []
      if (cfg.launch) {
        const port = cfg.launch.port || (await freePort())
        const replica = new Replica(`http://127.0.0.1:${port}`, cfg.api_key, cfg.request_timeout_ms)
        const launcher = new Launcher(cfg.launch, serveArgs(cfg, ctx, port, model), replica, ctx.log)
        await launcher.start()
        replicas.push(replica)
        launchers.push(launcher)
      } else {
        for (const url of [cfg.base_url!].flat()) {
          replicas.push(new Replica(url.replace(/\/+$/, ''), cfg.api_key, cfg.request_timeout_ms))
        }
        const up = await Promise.all(replicas.map((r) => r.healthy()))
        if (!up.some(Boolean)) {
          throw tuftError(
            'TUFT_CONFIG',
            `No vLLM server answers /health at ${replicas.map((r) => r.url).join(', ')}`,
          )
        }
      }
      const adapterDir = cfg.adapter_dir ?? join(tmpdir(), 'tuft-vllm-adapters')
      const staging = new AdapterStaging(
        adapterDir,
        cfg.adapter_dir_on_server ?? adapterDir,
        `tuft-${randomBytes(4).toString('hex')}`,
      )
      const info = await modelInfo(ctx, replicas.map((r) => r.url).join(','))
      ctx.log.info({ model: ctx.modelName, servers: replicas.map((r) => r.url) }, 'vLLM sampling ready')
      return new VllmSamplingEngine({
        info,
        replicas,
        launchers,
        staging,
        model,
        maxLogprobs: cfg.max_logprobs,
      })
    },
  }
}

export default createVllmProvider()
