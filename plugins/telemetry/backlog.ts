// Telemetry work kept off the request path. Histogram samples and log records are queued as they
// happen and handed to the OpenTelemetry SDK in one batch right after the current I/O phase
// (setImmediate), so a request's response is written before its telemetry costs anything beyond a
// push onto an array. The SDK's per-sample work (attribute hashing once per metric reader, log record
// construction, JSON parsing of the log line) then runs between requests.
//
// Nothing is lost or reordered: every metric collection (a Prometheus scrape, the periodic OTLP push,
// an in-memory reader in a test) and every forceFlush/shutdown drains the backlog first, and the
// samples keep their own values, attributes and (for log records) timestamps and span context.

import type { Attributes } from '@opentelemetry/api'

/** A synchronous instrument that takes one sample at a time (histogram or gauge). */
export interface Recorder {
  record(value: number, attributes?: Attributes): void
}

export class Backlog {
  #instruments: Recorder[] = []
  #values: number[] = []
  #attributes: (Attributes | undefined)[] = []
  readonly #drains = new Set<() => void>()
  #scheduled = false
  #draining = false

  /** Records `value` on `instrument` shortly; `attributes` must not be mutated afterwards. */
  record(instrument: Recorder, value: number, attributes?: Attributes): void {
    this.#instruments.push(instrument)
    this.#values.push(value)
    this.#attributes.push(attributes)
    this.schedule()
  }

  /** Another producer's queue (the log stream), drained with the rest; returns the unregistration. */
  addDrain(drain: () => void): () => void {
    this.#drains.add(drain)
    return () => {
      this.#drains.delete(drain)
    }
  }

  /** Asks for a drain after the current I/O phase (producers call this when they queue something). */
  schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(this.#onImmediate)
  }

  readonly #onImmediate = (): void => {
    this.#scheduled = false
    this.drain()
  }

  /** Hands everything queued to the SDK now (before collecting metrics, flushing or shutting down). */
  drain(): void {
    if (this.#draining) return
    this.#draining = true
    try {
      const instruments = this.#instruments
      if (instruments.length > 0) {
        const values = this.#values
        const attributes = this.#attributes
        this.#instruments = []
        this.#values = []
        this.#attributes = []
        for (let i = 0; i < instruments.length; i++) instruments[i]!.record(values[i]!, attributes[i])
      }
      for (const drain of this.#drains) drain()
    } finally {
      this.#draining = false
    }
  }
}
