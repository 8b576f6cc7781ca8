// ServiceClient: the entry point, shaped like the Tinker SDK's (spec §2). It checks the key, fetches
// client/config once, opens the session on first need, and creates training, sampling and REST clients.

import {
  type ClientConfigResponse,
  CreateModelResult,
  ServerCapabilitiesResponse,
  UntypedAPIFuture,
} from '../core/wire/schemas.js'
import { awaitFuture } from './futures.js'
import { HttpClient, type RetryOptions } from './http.js'
import { RestClient } from './rest.js'
import { SamplingClient } from './sampling.js'
import { fetchClientConfig, Session } from './session.js'
import { checked } from './shape.js'
import { TrainingClient } from './training.js'

export interface ServiceClientOptions {
  baseUrl: string
  /** Must start with `tml-` (as the SDK requires). */
  apiKey: string
  userMetadata?: Record<string, string>
  projectId?: string
  tags?: string[]
  retry?: Partial<RetryOptions>
  /** Read timeout of ordinary calls (default 60 s). */
  timeoutMs?: number
  heartbeatIntervalMs?: number
  /** Post SESSION_START/SESSION_END telemetry (default true; failures are ignored either way). */
  telemetry?: boolean
}

export interface LoraOptions {
  rank?: number
  seed?: number
  trainMlp?: boolean
  trainAttn?: boolean
  trainUnembed?: boolean
  userMetadata?: Record<string, string>
}

export class ServiceClient {
  readonly http: HttpClient
  private config?: Promise<ClientConfigResponse>
  private session?: Promise<Session>

  constructor(private readonly opts: ServiceClientOptions) {
    if (!opts.apiKey.startsWith('tml-')) throw new TypeError("The api_key must start with the 'tml-' prefix")
    this.http = new HttpClient({
      baseUrl: opts.baseUrl,
      apiKey: opts.apiKey,
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    })
  }

  /** The server's feature flags, fetched once before anything else. */
  getClientConfig(): Promise<ClientConfigResponse> {
    this.config ??= fetchClientConfig(this.http)
    this.config.catch(() => {
      this.config = undefined
    })
    return this.config
  }

  private getSession(): Promise<Session> {
    this.session ??= this.getClientConfig().then((config) =>
      Session.open(this.http, config, {
        ...(this.opts.tags ? { tags: this.opts.tags } : {}),
        ...(this.opts.userMetadata ? { userMetadata: this.opts.userMetadata } : {}),
        ...(this.opts.projectId ? { projectId: this.opts.projectId } : {}),
        ...(this.opts.heartbeatIntervalMs ? { heartbeatIntervalMs: this.opts.heartbeatIntervalMs } : {}),
        ...(this.opts.telemetry === undefined ? {} : { telemetry: this.opts.telemetry }),
      }),
    )
    // A failed bootstrap may be retried by the next call.
    this.session.catch(() => {
      this.session = undefined
    })
    return this.session
  }

  /** The session id, opening the session if needed. */
  async getSessionId(): Promise<string> {
    return (await this.getSession()).sessionId
  }

  async getServerCapabilities(): Promise<ServerCapabilitiesResponse> {
    await this.getClientConfig()
    const body = await this.http.json('GET', '/api/v1/get_server_capabilities')
    return checked(ServerCapabilitiesResponse, body, 'get_server_capabilities')
  }

  private async createModel(session: Session, baseModel: string, lora: LoraOptions): Promise<TrainingClient> {
    const trainMlp = lora.trainMlp ?? true
    const trainAttn = lora.trainAttn ?? true
    const trainUnembed = lora.trainUnembed ?? true
    if (!trainMlp && !trainAttn && !trainUnembed) {
      throw new TypeError('At least one of trainMlp, trainAttn, trainUnembed must be true')
    }
    const submitted = await session.http.json('POST', '/api/v1/create_model', {
      json: {
        session_id: session.sessionId,
        model_seq_id: session.nextModelSeq(),
        base_model: baseModel,
        ...(lora.userMetadata ? { user_metadata: lora.userMetadata } : {}),
        lora_config: {
          rank: lora.rank ?? 32,
          ...(lora.seed === undefined ? {} : { seed: lora.seed }),
          train_unembed: trainUnembed,
          train_mlp: trainMlp,
          train_attn: trainAttn,
        },
        type: 'create_model',
      },
    })
    const future = checked(UntypedAPIFuture, submitted, 'create_model')
    const result = checked(
      CreateModelResult,
      await awaitFuture(session.http, future, 'CreateModel'),
      'create_model',
    )
    return new TrainingClient(session, result.model_id)
  }

  /** A new training run: a fresh LoRA adapter on `baseModel`. */
  async createLoraTrainingClient(baseModel: string, opts: LoraOptions = {}): Promise<TrainingClient> {
    return this.createModel(await this.getSession(), baseModel, opts)
  }

  /** A new training run initialised from a checkpoint (weights, and optimizer state when asked). */
  async createTrainingClientFromState(
    path: string,
    opts: { withOptimizer?: boolean; baseModel?: string; userMetadata?: Record<string, string> } = {},
  ): Promise<TrainingClient> {
    const session = await this.getSession()
    const info = await this.createRestClient().getWeightsInfoByTinkerPath(path)
    if (info.lora_rank === null || info.lora_rank === undefined) {
      throw new TypeError(`weights_info for ${path} has no lora_rank`)
    }
    const client = await this.createModel(session, opts.baseModel ?? info.base_model, {
      rank: info.lora_rank,
      trainMlp: info.train_mlp ?? true,
      trainAttn: info.train_attn ?? true,
      trainUnembed: info.train_unembed ?? true,
      ...(opts.userMetadata ? { userMetadata: opts.userMetadata } : {}),
    })
    await (opts.withOptimizer ? client.loadStateWithOptimizer(path) : client.loadState(path))
    return client
  }

  /** A sampler over a checkpoint (`modelPath`, tinker://...) or over a base model alone. */
  async createSamplingClient(target: { modelPath?: string; baseModel?: string }): Promise<SamplingClient> {
    const session = await this.getSession()
    return new SamplingClient(session, await session.createSamplingSession(target))
  }

  createRestClient(): RestClient {
    return new RestClient(this.http)
  }

  /** Stops the heartbeat (and says goodbye by telemetry). The client should not be used afterwards. */
  async close(): Promise<void> {
    const session = await this.session?.catch(() => undefined)
    session?.close()
  }
}
