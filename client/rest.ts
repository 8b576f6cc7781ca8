// RestClient: training runs, checkpoints, sessions, samplers and weights info (spec §3.17, §3.20,
// §3.22-3.24). Checkpoints are addressed by run id + checkpoint id, or by their tinker:// path.

import { setTimeout as sleep } from 'node:timers/promises'
import { formatCheckpointId, parseTinkerPath } from '../core/wire/paths.js'
import {
  CheckpointArchiveResponse,
  CheckpointsResponse,
  SamplerResponse,
  SessionResponse,
  SessionsResponse,
  SessionTraceExportResponse,
  TrainingRun,
  TrainingRunsResponse,
  WeightsInfoResponse,
} from '../core/wire/schemas.js'
import { APIStatusError, ResponseFormatError } from './errors.js'
import { type HttpClient, parseBody } from './http.js'
import { checked } from './shape.js'

export type AccessScope = 'owned' | 'accessible'

export interface ArchiveUrl {
  url: string
  /** When the URL stops working (15 minutes when the server does not say). */
  expires: Date
}

const ARCHIVE_VALIDITY_MS = 15 * 60 * 1000

/** How often the SDK asks again while a session trace export is pending (spec §3.24). */
const TRACE_EXPORT_POLL_MS = 5000

/** How long to wait for an archive still being built (503), and how often to ask (spec §3.23.7). */
export interface ArchiveWait {
  attempts: number
  delayMs: number
}

function fromPath(path: string): { runId: string; checkpointId: string } {
  const p = parseTinkerPath(path)
  return { runId: p.runId, checkpointId: formatCheckpointId(p.kind, p.name) }
}

export class RestClient {
  constructor(
    private readonly http: HttpClient,
    private readonly archiveWait: ArchiveWait = { attempts: 6, delayMs: 30_000 },
  ) {}

  private checkpointUrl(runId: string, checkpointId: string, action = ''): string {
    return `/api/v1/training_runs/${runId}/checkpoints/${checkpointId}${action}`
  }

  async listTrainingRuns(opts: { limit?: number; offset?: number; accessScope?: AccessScope } = {}) {
    const body = await this.http.json('GET', '/api/v1/training_runs', {
      query: { limit: opts.limit ?? 20, offset: opts.offset ?? 0, access_scope: opts.accessScope ?? 'owned' },
    })
    return checked(TrainingRunsResponse, body, 'training_runs')
  }

  async getTrainingRun(runId: string, accessScope: AccessScope = 'owned'): Promise<TrainingRun> {
    const body = await this.http.json('GET', `/api/v1/training_runs/${runId}`, {
      query: { access_scope: accessScope },
    })
    return checked(TrainingRun, body, 'training_run')
  }

  getTrainingRunByTinkerPath(path: string): Promise<TrainingRun> {
    return this.getTrainingRun(fromPath(path).runId)
  }

  async listCheckpoints(runId: string): Promise<CheckpointsResponse> {
    const body = await this.http.json('GET', `/api/v1/training_runs/${runId}/checkpoints`)
    return checked(CheckpointsResponse, body, 'checkpoints')
  }

  async listUserCheckpoints(opts: { limit?: number; offset?: number } = {}): Promise<CheckpointsResponse> {
    const body = await this.http.json('GET', '/api/v1/checkpoints', {
      query: { limit: opts.limit ?? 100, offset: opts.offset ?? 0 },
    })
    return checked(CheckpointsResponse, body, 'checkpoints')
  }

  async deleteCheckpoint(runId: string, checkpointId: string): Promise<void> {
    await this.http.call('DELETE', this.checkpointUrl(runId, checkpointId))
  }

  deleteCheckpointFromTinkerPath(path: string): Promise<void> {
    const { runId, checkpointId } = fromPath(path)
    return this.deleteCheckpoint(runId, checkpointId)
  }

  async publishCheckpointFromTinkerPath(path: string): Promise<void> {
    const { runId, checkpointId } = fromPath(path)
    await this.http.call('POST', this.checkpointUrl(runId, checkpointId, '/publish'))
  }

  async unpublishCheckpointFromTinkerPath(path: string): Promise<void> {
    const { runId, checkpointId } = fromPath(path)
    await this.http.call('DELETE', this.checkpointUrl(runId, checkpointId, '/publish'))
  }

  /** `null` removes the expiry. */
  async setCheckpointTtlFromTinkerPath(path: string, ttlSeconds: number | null): Promise<void> {
    const { runId, checkpointId } = fromPath(path)
    await this.http.call('PUT', this.checkpointUrl(runId, checkpointId, '/ttl'), {
      json: { ttl_seconds: ttlSeconds },
    })
  }

  /** The download URL of a checkpoint's archive: a 302 Location (not followed) or a JSON {url, expires}. */
  async getCheckpointArchiveUrl(runId: string, checkpointId: string): Promise<ArchiveUrl> {
    const path = this.checkpointUrl(runId, checkpointId, '/archive')
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.http.call('GET', path, { redirect: 'manual' })
        if (res.status >= 300 && res.status < 400) {
          const location = res.headers.get('location')
          if (!location) throw new ResponseFormatError(`${path}: ${res.status} without a Location header`)
          const expires = Date.parse(res.headers.get('expires') ?? '')
          return {
            url: new URL(location, this.http.url(path)).toString(),
            expires: new Date(Number.isNaN(expires) ? Date.now() + ARCHIVE_VALIDITY_MS : expires),
          }
        }
        const body = checked(CheckpointArchiveResponse, parseBody(res), 'archive')
        const expires = body.expires ? Date.parse(body.expires) : Number.NaN
        return {
          url: body.url,
          expires: new Date(Number.isNaN(expires) ? Date.now() + ARCHIVE_VALIDITY_MS : expires),
        }
      } catch (err) {
        // 503 means the archive is still being built.
        const building = err instanceof APIStatusError && err.status === 503
        if (!building || attempt + 1 >= this.archiveWait.attempts) throw err
        await sleep(this.archiveWait.delayMs)
      }
    }
  }

  getCheckpointArchiveUrlFromTinkerPath(path: string): Promise<ArchiveUrl> {
    const { runId, checkpointId } = fromPath(path)
    return this.getCheckpointArchiveUrl(runId, checkpointId)
  }

  async getWeightsInfoByTinkerPath(path: string): Promise<WeightsInfoResponse> {
    const body = await this.http.json('POST', '/api/v1/weights_info', { json: { tinker_path: path } })
    return checked(WeightsInfoResponse, body, 'weights_info')
  }

  async listSessions(opts: { limit?: number; offset?: number; accessScope?: AccessScope } = {}) {
    const body = await this.http.json('GET', '/api/v1/sessions', {
      query: { limit: opts.limit ?? 20, offset: opts.offset ?? 0, access_scope: opts.accessScope ?? 'owned' },
    })
    return checked(SessionsResponse, body, 'sessions')
  }

  async getSession(sessionId: string, accessScope: AccessScope = 'owned'): Promise<SessionResponse> {
    const body = await this.http.json('GET', `/api/v1/sessions/${sessionId}`, {
      query: { access_scope: accessScope },
    })
    return checked(SessionResponse, body, 'session')
  }

  /**
   * The download URL of a session's timeline (a trace Perfetto opens), asked until the server says
   * ready, as the SDK's export_session_trace does; a failed export throws.
   */
  async exportSessionTrace(sessionId: string, pollMs = TRACE_EXPORT_POLL_MS): Promise<string> {
    for (;;) {
      const body = await this.http.json('GET', `/api/v1/sessions/${sessionId}/trace_export`)
      const answer = checked(SessionTraceExportResponse, body, 'trace_export')
      if (answer.status === 'ready') {
        if (!answer.url) throw new ResponseFormatError('trace_export answered ready without a url')
        return answer.url
      }
      if (answer.status === 'failed') {
        throw new Error(`Trace export failed for session ${sessionId}: ${answer.error ?? 'no reason given'}`)
      }
      await sleep(pollMs)
    }
  }

  async getSampler(samplerId: string): Promise<SamplerResponse> {
    return checked(SamplerResponse, await this.http.json('GET', `/api/v1/samplers/${samplerId}`), 'sampler')
  }
}
