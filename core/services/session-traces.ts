// Session timelines for `GET /sessions/{id}/trace_export` (the SDK's export_session_trace): each
// session's finished futures (queued → running → done), recorded from the event bus in this process's
// memory within fixed bounds, and served through signed links as a trace Perfetto opens (Chrome
// trace-event JSON; the SDK names the file .pftrace and Perfetto reads it by its content).

import { tuftError } from '../errors.js'
import type { EventBus, FutureKind } from '../events.js'
import { LinkSigner } from '../signed-links.js'
import type { SessionService } from './sessions.js'

export interface TimelineEntry {
  requestId: string
  kind: FutureKind
  modelName: string
  /** The training run or sampler the future served; null for session-level work. */
  target: string | null
  queuedAt: number
  /** Null when it failed before an engine took it. */
  startedAt: number | null
  endedAt: number
  ok: boolean
  error?: string
}

export interface SessionTracesOptions {
  events: EventBus
  sessions: SessionService
  /** Entries kept per session (the oldest go first). */
  perSession?: number
  /** Entries kept in all; past it, the sessions idle the longest are forgotten whole. */
  total?: number
}

/** About 20 MB at most, whatever the load: 10k training steps are 20k futures. */
const PER_SESSION = 20_000
const TOTAL = 100_000

interface Timeline {
  entries: TimelineEntry[]
  /** Entries dropped from the front to stay within perSession. */
  dropped: number
}

/** One Chrome trace event (the JSON trace format Perfetto and chrome://tracing read). */
interface TraceEvent {
  name: string
  ph: 'M' | 'b' | 'e'
  pid: number
  tid?: number
  ts?: number
  cat?: string
  id?: string
  args?: Record<string, unknown>
}

export interface TraceDocument {
  traceEvents: TraceEvent[]
  displayTimeUnit: 'ms'
  otherData: { session_id: string; exported_at: string; futures: number; dropped: number }
}

export class SessionTraces {
  private readonly timelines = new Map<string, Timeline>()
  /** When each live future of a session was handed to an engine, by request id. */
  private readonly started = new Map<string, number>()
  private size = 0
  private readonly perSession: number
  private readonly total: number
  /** Per process, like archive links: a link dies with the process that recorded the timeline. */
  private readonly links = new LinkSigner()

  constructor(private readonly opts: SessionTracesOptions) {
    this.perSession = opts.perSession ?? PER_SESSION
    this.total = opts.total ?? TOTAL
    opts.events.on('future.running', ({ trace }) => {
      if (trace.sessionId !== undefined) this.started.set(trace.requestId, Date.now())
    })
    opts.events.on('future.done', ({ trace, kind, modelName, ok, error, totalMs }) => {
      if (trace.sessionId === undefined) return
      const endedAt = Date.now()
      const startedAt = this.started.get(trace.requestId) ?? null
      this.started.delete(trace.requestId)
      this.append(trace.sessionId, {
        requestId: trace.requestId,
        kind,
        modelName,
        target: trace.trainingRunId ?? trace.samplingSessionId ?? null,
        queuedAt: endedAt - totalMs,
        startedAt,
        endedAt,
        ok,
        ...(error === undefined ? {} : { error }),
      })
    })
  }

  /** A link token for the caller's own session, valid until `expiresAt` (404 for anyone else's). */
  async link(userId: string, sessionId: string, expiresAt: number): Promise<string> {
    await this.opts.sessions.get(userId, sessionId)
    return this.links.sign([userId, sessionId], expiresAt)
  }

  /** The trace a link grants, re-checking that its user still owns the session. */
  async open(token: string): Promise<TraceDocument> {
    const fields = this.links.open(token)
    if (!fields) throw tuftError('TUFT_NOT_FOUND', 'Unknown or expired trace export link')
    const [userId, sessionId] = fields as [string, string]
    await this.opts.sessions.get(userId, sessionId)
    return traceDocument(sessionId, this.timelines.get(sessionId) ?? { entries: [], dropped: 0 })
  }

  private append(sessionId: string, entry: TimelineEntry): void {
    const timeline = this.timelines.get(sessionId) ?? { entries: [], dropped: 0 }
    // Re-inserted so that the map's order is the order of last activity (eviction takes the first).
    this.timelines.delete(sessionId)
    this.timelines.set(sessionId, timeline)
    timeline.entries.push(entry)
    this.size++
    if (timeline.entries.length > this.perSession) {
      const excess = timeline.entries.length - this.perSession
      timeline.entries.splice(0, excess)
      timeline.dropped += excess
      this.size -= excess
    }
    for (const [id, idle] of this.timelines) {
      if (this.size <= this.total || id === sessionId) break
      this.timelines.delete(id)
      this.size -= idle.entries.length
    }
  }
}

/**
 * One process row per training run or sampler (plus one for session-level work), each future an async
 * slice from queued to done with its queued and running phases nested inside. Async slices, because
 * a run's futures overlap (the SDK pipelines submissions), which thread slices may not.
 */
function traceDocument(sessionId: string, timeline: Timeline): TraceDocument {
  const pids = new Map<string, number>()
  const events: TraceEvent[] = []
  const pidOf = (target: string | null): number => {
    const name = target ?? `session ${sessionId}`
    let pid = pids.get(name)
    if (pid === undefined) {
      pid = pids.size + 1
      pids.set(name, pid)
      events.push({ name: 'process_name', ph: 'M', pid, args: { name } })
    }
    return pid
  }
  const us = (ms: number) => ms * 1000
  for (const e of timeline.entries) {
    const pid = pidOf(e.target)
    const slice = { cat: 'future', id: e.requestId, pid, tid: pid }
    const outcome = e.ok ? 'ok' : 'failed'
    events.push({
      ...slice,
      name: e.kind,
      ph: 'b',
      ts: us(e.queuedAt),
      args: { request_id: e.requestId, model: e.modelName, outcome, ...(e.error ? { error: e.error } : {}) },
    })
    const runningFrom = e.startedAt ?? e.endedAt
    events.push({ ...slice, name: 'queued', ph: 'b', ts: us(e.queuedAt) })
    events.push({ ...slice, name: 'queued', ph: 'e', ts: us(runningFrom) })
    if (e.startedAt !== null) {
      events.push({ ...slice, name: 'running', ph: 'b', ts: us(e.startedAt) })
      events.push({ ...slice, name: 'running', ph: 'e', ts: us(e.endedAt) })
    }
    events.push({ ...slice, name: e.kind, ph: 'e', ts: us(e.endedAt) })
  }
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: {
      session_id: sessionId,
      exported_at: new Date().toISOString(),
      futures: timeline.entries.length,
      dropped: timeline.dropped,
    },
  }
}
