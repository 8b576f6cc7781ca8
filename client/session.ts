// One client session (spec §2.1): client/config first, dynamic_config (404 accepted), create_session,
// then a heartbeat every 10 s on an unref'd timer and best-effort telemetry. Training and sampling
// clients share it for their counters (spec §2.2).

import { randomUUID } from 'node:crypto'
import { platform } from 'node:os'
import {
  type ClientConfigResponse,
  ClientConfigResponse as ClientConfigSchema,
  CreateSamplingSessionResponse,
  CreateSessionResponse,
} from '../core/wire/schemas.js'
import { APIStatusError } from './errors.js'
import type { HttpClient } from './http.js'
import { checked } from './shape.js'

/** The protocol generation this client speaks; servers pick feature flags by it (spec §3.1, §8.1). */
export const PROTOCOL_SDK_VERSION = '0.25.0'
const HEARTBEAT_TIMEOUT_MS = 10_000
const TELEMETRY_TIMEOUT_MS = 5_000

export async function fetchClientConfig(http: HttpClient): Promise<ClientConfigResponse> {
  const config = await http.json('POST', '/api/v1/client/config', {
    json: { sdk_version: PROTOCOL_SDK_VERSION },
  })
  const checkedConfig = checked(ClientConfigSchema, config ?? {}, 'client/config')
  try {
    await http.json('POST', '/api/v1/client/dynamic_config', { json: { sdk_version: PROTOCOL_SDK_VERSION } })
  } catch (err) {
    // Optional endpoint: a server without it answers 404, and the defaults apply.
    if (!(err instanceof APIStatusError && err.status === 404)) throw err
  }
  return checkedConfig
}

export interface SessionOptions {
  tags?: string[]
  userMetadata?: Record<string, string>
  projectId?: string
  heartbeatIntervalMs?: number
  telemetry?: boolean
}

export class Session {
  /** Set when the latest heartbeat failed; cleared by the next success. Heartbeats never throw. */
  lastHeartbeatError: Error | null = null
  private modelSeq = 0
  private samplingSeq = 0
  private readonly timer: NodeJS.Timeout
  private readonly startedAt = Date.now()
  private readonly processId = randomUUID()
  private eventIndex = 0

  private constructor(
    readonly http: HttpClient,
    readonly config: ClientConfigResponse,
    readonly sessionId: string,
    heartbeatIntervalMs: number,
    private readonly telemetry: boolean,
  ) {
    this.timer = setInterval(() => void this.heartbeat(), heartbeatIntervalMs)
    // The heartbeat must not keep a finished script alive.
    this.timer.unref()
  }

  static async open(
    http: HttpClient,
    config: ClientConfigResponse,
    opts: SessionOptions = {},
  ): Promise<Session> {
    const body = await http.json('POST', '/api/v1/create_session', {
      json: {
        tags: opts.tags ?? [],
        user_metadata: opts.userMetadata ?? {},
        sdk_version: PROTOCOL_SDK_VERSION,
        ...(opts.projectId ? { project_id: opts.projectId } : {}),
        type: 'create_session',
      },
    })
    const res = checked(CreateSessionResponse, body, 'create_session')
    if (res.error_message) throw new Error(`create_session: ${res.error_message}`)
    const session = new Session(
      http,
      config,
      res.session_id,
      opts.heartbeatIntervalMs ?? 10_000,
      opts.telemetry ?? true,
    )
    session.sendTelemetry('SESSION_START', {})
    return session
  }

  nextModelSeq(): number {
    return this.modelSeq++
  }

  nextSamplingSeq(): number {
    return this.samplingSeq++
  }

  /** POST create_sampling_session for a checkpoint path or a base model; returns the sampler id. */
  async createSamplingSession(target: { modelPath?: string; baseModel?: string }): Promise<string> {
    if (!target.modelPath && !target.baseModel) throw new TypeError('Pass modelPath or baseModel')
    if (target.modelPath && !target.modelPath.startsWith('tinker://')) {
      throw new TypeError(`modelPath must start with tinker://, got '${target.modelPath}'`)
    }
    const body = await this.http.json('POST', '/api/v1/create_sampling_session', {
      json: {
        session_id: this.sessionId,
        sampling_session_seq_id: this.nextSamplingSeq(),
        ...(target.modelPath ? { model_path: target.modelPath } : { base_model: target.baseModel }),
        type: 'create_sampling_session',
      },
    })
    return checked(CreateSamplingSessionResponse, body, 'create_sampling_session').sampling_session_id
  }

  async heartbeat(): Promise<void> {
    try {
      await this.http.call('POST', '/api/v1/session_heartbeat', {
        json: { session_id: this.sessionId, type: 'session_heartbeat' },
        retries: 0,
        timeoutMs: HEARTBEAT_TIMEOUT_MS,
      })
      this.lastHeartbeatError = null
    } catch (err) {
      this.lastHeartbeatError = err instanceof Error ? err : new Error(String(err))
    }
  }

  /** Fire-and-forget: telemetry is never allowed to fail or slow down the user's work. */
  private sendTelemetry(event: string, extra: Record<string, unknown>): void {
    if (!this.telemetry) return
    const payload = {
      events: [
        {
          event,
          event_id: randomUUID(),
          event_session_index: this.eventIndex++,
          severity: 'INFO',
          timestamp: new Date().toISOString(),
          ...extra,
        },
      ],
      platform: platform(),
      sdk_version: PROTOCOL_SDK_VERSION,
      session_id: this.sessionId,
      process_uuid: this.processId,
    }
    this.http
      .call('POST', '/api/v1/telemetry', { json: payload, retries: 0, timeoutMs: TELEMETRY_TIMEOUT_MS })
      .catch(() => undefined)
  }

  close(): void {
    clearInterval(this.timer)
    this.sendTelemetry('SESSION_END', { duration: `PT${(Date.now() - this.startedAt) / 1000}S` })
  }
}
