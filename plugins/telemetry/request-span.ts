// The SERVER span of each HTTP request, made without the SDK's general-purpose Span. One is started
// and ended for every request, and the SDK span's per-span machinery (span limits and attribute
// validation, a clock anchored per span, self-observability metrics, a context manager round trip on
// end) cost more than the span's own content. This one keeps only what a request span needs. It is an
// API Span, so routes hand it to services as the parent of future spans, and an SDK ReadableSpan,
// given to the same span processors as the tracer's spans: exporters cannot tell the difference.

import {
  type Attributes,
  type AttributeValue,
  type Exception,
  type HrTime,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  TraceFlags,
  trace,
} from '@opentelemetry/api'
import {
  hrTimeDuration,
  type InstrumentationScope,
  millisToHrTime,
  timeInputToHrTime,
} from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import {
  RandomIdGenerator,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SpanProcessor,
  type TimedEvent,
} from '@opentelemetry/sdk-trace-base'

const ids = new RandomIdGenerator()
const NO_TIME: HrTime = [0, 0]
// Shared until a span gets its first event or link, and never mutated: most request spans get none.
const NO_LINKS: Link[] = []
const NO_EVENTS: TimedEvent[] = []
const UNSET: SpanStatus = { code: SpanStatusCode.UNSET }

/** What every request span of one telemetry instance shares. */
export class RequestSpans {
  readonly resource: Resource
  readonly instrumentationScope: InstrumentationScope
  readonly #processors: readonly SpanProcessor[]
  readonly #sampler: Sampler | null

  /**
   * `sampler`: the tracer's, or null to record every span without asking it (a ratio of 1); either
   * way an incoming traceparent's sampled flag is kept, as the tracer's parent-based sampler does.
   */
  constructor(
    resource: Resource,
    scope: InstrumentationScope,
    processors: readonly SpanProcessor[],
    sampler: Sampler | null = null,
  ) {
    this.resource = resource
    this.instrumentationScope = scope
    this.#processors = processors
    this.#sampler = sampler
  }

  /** Starts a span; a valid `parent` (an incoming traceparent) gives its trace, the sampler the rest. */
  start(name: string, attributes: Attributes, parent: SpanContext | undefined): RequestSpan {
    const span = new RequestSpan(this, name, attributes, parent)
    if (this.#sampler !== null) {
      const context = parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent)
      const { decision } = this.#sampler.shouldSample(
        context,
        span.spanContext().traceId,
        name,
        SpanKind.SERVER,
        attributes,
        [],
      )
      span.sampled(decision === SamplingDecision.RECORD_AND_SAMPLED)
    }
    return span
  }

  /** @internal RequestSpan.end */
  ended(span: RequestSpan): void {
    // Unsampled (the sampler or an incoming traceparent said so): the ids propagate, nothing is exported.
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return
    for (const processor of this.#processors) processor.onEnd(span)
  }
}

export class RequestSpan implements Span, ReadableSpan {
  readonly kind = SpanKind.SERVER
  readonly parentSpanContext: SpanContext | undefined
  readonly startTime: HrTime
  readonly attributes: Attributes
  links: Link[] = NO_LINKS
  events: TimedEvent[] = NO_EVENTS
  readonly droppedAttributesCount = 0
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0
  name: string
  status: SpanStatus = UNSET
  endTime: HrTime = NO_TIME
  duration: HrTime = NO_TIME
  ended = false
  readonly #owner: RequestSpans
  readonly #context: { traceId: string; spanId: string; traceFlags: number }
  /** Date.now() minus the performance clock at the start: later times keep sub-ms precision. */
  readonly #clockOffset: number

  constructor(owner: RequestSpans, name: string, attributes: Attributes, parent: SpanContext | undefined) {
    const now = Date.now()
    this.#clockOffset = now - performance.now()
    this.#owner = owner
    this.name = name
    this.attributes = attributes
    this.parentSpanContext = parent
    this.startTime = millisToHrTime(now)
    this.#context = {
      traceId: parent?.traceId ?? ids.generateTraceId(),
      spanId: ids.generateSpanId(),
      traceFlags: parent === undefined ? TraceFlags.SAMPLED : parent.traceFlags & TraceFlags.SAMPLED,
    }
  }

  /** @internal RequestSpans.start: the sampler's decision (exported, and its children recorded, or not). */
  sampled(yes: boolean): void {
    this.#context.traceFlags = yes ? TraceFlags.SAMPLED : TraceFlags.NONE
  }

  get resource(): Resource {
    return this.#owner.resource
  }

  get instrumentationScope(): InstrumentationScope {
    return this.#owner.instrumentationScope
  }

  spanContext(): SpanContext {
    return this.#context
  }

  isRecording(): boolean {
    return !this.ended
  }

  setAttribute(key: string, value: AttributeValue | undefined): this {
    if (!this.ended && value !== undefined && value !== null) this.attributes[key] = value
    return this
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) this.setAttribute(key, attributes[key])
    return this
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.ended) return this
    const timed = isTimeInput(attributesOrTime)
    if (this.events === NO_EVENTS) this.events = []
    this.events.push({
      name,
      attributes: timed ? {} : (attributesOrTime ?? {}),
      time: this.#time(timed ? attributesOrTime : time),
      droppedAttributesCount: 0,
    })
    return this
  }

  addLink(link: Link): this {
    if (this.ended) return this
    if (this.links === NO_LINKS) this.links = []
    this.links.push(link)
    return this
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link)
    return this
  }

  setStatus(status: SpanStatus): this {
    if (!this.ended && this.status.code !== SpanStatusCode.OK) this.status = status
    return this
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name
    return this
  }

  /** The semantic-convention `exception` event, as the SDK's span records it. */
  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {}
    if (typeof exception === 'string') {
      attributes['exception.message'] = exception
    } else {
      const type = exception.name ?? exception.code
      if (type !== undefined) attributes['exception.type'] = String(type)
      if (exception.message !== undefined) attributes['exception.message'] = exception.message
      if (exception.stack !== undefined) attributes['exception.stacktrace'] = exception.stack
    }
    this.addEvent('exception', attributes, time)
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return
    this.endTime = this.#time(endTime)
    this.duration = hrTimeDuration(this.startTime, this.endTime)
    this.ended = true
    this.#owner.ended(this)
  }

  #time(input: TimeInput | undefined): HrTime {
    return input === undefined
      ? millisToHrTime(performance.now() + this.#clockOffset)
      : timeInputToHrTime(input)
  }
}

function isTimeInput(value: unknown): value is TimeInput {
  return typeof value === 'number' || value instanceof Date || Array.isArray(value)
}
