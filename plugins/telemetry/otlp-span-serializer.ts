// The OTLP/protobuf body of exported spans, written in one pass. The server exports a SERVER span per
// HTTP request, and the official serializer costs ~4 µs per span there: a size-estimation pass before
// the writing pass, a capacity check on every field, a new array per trace and span id. This writes
// each batch once into a buffer kept between batches. Its output must stay byte-identical to
// ProtobufTraceSerializer's (field order, which empty fields are written, int vs double attributes),
// which test/telemetry-span-serializer.test.ts checks.

import type { Attributes, HrTime, Link, SpanStatus } from '@opentelemetry/api'
import type { InstrumentationScope } from '@opentelemetry/core'
import {
  type IExportTraceServiceResponse,
  type ISerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base'

const INITIAL_SIZE = 1 << 16
// A batch bigger than this (huge attributes) does not pin its buffer for the life of the process.
const MAX_KEPT_SIZE = 1 << 22
// Attribute numbers that are integers in int64's range are int_value, the others double_value.
const MIN_INT64 = -(2 ** 63)
const MAX_INT64 = 2 ** 63
// Flags: the low 8 bits are the W3C trace flags; 0x100 says that 0x200 (a remote parent) is known.
const HAS_IS_REMOTE = 0x100
const IS_REMOTE = 0x200

// Object.hasOwn is several times slower in a for-in loop, which V8 optimizes for this one.
const hasOwn = Object.prototype.hasOwnProperty

let buf = Buffer.allocUnsafe(INITIAL_SIZE)
let pos = 0

// Each writer below writes a whole field, its tag included, and makes room for it first.
function ensure(size: number): void {
  if (pos + size > buf.length) grow(size)
}

function grow(size: number): void {
  let grown = buf.length * 2
  while (grown < pos + size) grown *= 2
  const next = Buffer.allocUnsafe(grown)
  buf.copy(next, 0, 0, pos)
  buf = next
}

// Same arithmetic as the official writer, so that odd values (negative, fractional, undefined counts)
// come out the same.
function varint(tag: number, value: number): void {
  ensure(11)
  buf[pos++] = tag
  if (value >= 0 && value <= 0xffffffff) {
    let v = value >>> 0
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    buf[pos++] = v
    return
  }
  let low: number
  let high: number
  if (value >= 0) {
    low = value >>> 0
    high = (value / 0x100000000) >>> 0
  } else {
    const abs = Math.abs(value)
    low = (~(abs >>> 0) + 1) >>> 0
    high = ~((abs / 0x100000000) >>> 0) >>> 0
    if (low === 0) high = (high + 1) >>> 0
  }
  while (high > 0 || low > 0x7f) {
    buf[pos++] = (low & 0x7f) | 0x80
    low = ((low >>> 7) | (high << 25)) >>> 0
    high >>>= 7
  }
  buf[pos++] = low & 0x7f
}

function fixed32(v: number): void {
  buf[pos++] = v
  buf[pos++] = v >>> 8
  buf[pos++] = v >>> 16
  buf[pos++] = v >>> 24
}

/** Starts a sub-message, with `reserved` bytes for its length: the common size of that length. */
function begin(tag: number, reserved: number): number {
  ensure(1 + reserved)
  buf[pos++] = tag
  pos += reserved
  return pos
}

/** Ends the sub-message begun at `start`; its content only moves when its length needs another size. */
function end(start: number, reserved: number): void {
  const length = pos - start
  if (length < 0x80 && reserved === 1) {
    buf[start - 1] = length
    return
  }
  const size = length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : length < 0x10000000 ? 4 : 5
  let at = start - reserved
  if (size !== reserved) {
    ensure(size - reserved)
    buf.copyWithin(at + size, start, pos)
    pos += size - reserved
  }
  let v = length
  while (v > 0x7f) {
    buf[at++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[at] = v
}

function string(tag: number, s: string): void {
  const n = s.length
  ensure(n + 2)
  buf[pos] = tag
  // ASCII below 128 characters, nearly every string here, is its own UTF-8 with a one-byte length.
  if (n < 0x80) {
    let at = pos + 2
    const stop = at + n
    for (let i = 0; at < stop; at++) {
      const c = s.charCodeAt(i++)
      if (c > 0x7f) break
      buf[at] = c
    }
    if (at === stop) {
      buf[pos + 1] = n
      pos = stop
      return
    }
  }
  const size = Buffer.byteLength(s, 'utf8')
  varint(tag, size)
  ensure(size)
  pos += buf.write(s, pos, 'utf8')
}

function bytes(tag: number, value: Uint8Array): void {
  varint(tag, value.length)
  ensure(value.length)
  buf.set(value, pos)
  pos += value.length
}

// As the official hexToBinary: invalid digits are not rejected but mapped the same way.
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  return c - 55
}

function id(tag: number, hex: string): void {
  const n = hex.length >>> 1
  varint(tag, n)
  ensure(n)
  for (let i = 0; i < 2 * n; i += 2)
    buf[pos++] = (nibble(hex.charCodeAt(i)) << 4) | nibble(hex.charCodeAt(i + 1))
}

// Nanoseconds since the epoch overflow 2^53: seconds are split at bit 16 so each product stays exact.
function time(tag: number, t: HrTime): void {
  const seconds = t[0]
  const fromLow = (seconds & 0xffff) * 1e9
  const fromHigh = ((seconds / 0x10000) >>> 0) * 1e9
  const low = (fromLow >>> 0) + (((fromHigh & 0xffff) * 0x10000) >>> 0) + t[1]
  ensure(9)
  buf[pos++] = tag
  fixed32(low >>> 0)
  fixed32(Math.floor(fromLow / 0x100000000) + ((fromHigh / 0x10000) >>> 0) + Math.floor(low / 0x100000000))
}

function keyValues(tag: number, attributes: Attributes): void {
  for (const key in attributes) {
    if (!hasOwn.call(attributes, key)) continue
    const kv = begin(tag, 1)
    string(0x0a, key)
    const value = begin(0x12, 1)
    anyValue(attributes[key])
    end(value, 1)
    end(kv, 1)
  }
}

function anyValue(value: unknown): void {
  switch (typeof value) {
    case 'string':
      string(0x0a, value)
      return
    case 'boolean':
      varint(0x10, value ? 1 : 0)
      return
    case 'number':
      if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
        varint(0x18, value)
      } else {
        ensure(9)
        buf[pos++] = 0x21
        pos = buf.writeDoubleLE(value, pos)
      }
      return
    case 'object':
      if (value instanceof Uint8Array) {
        bytes(0x3a, value)
      } else if (Array.isArray(value)) {
        const array = begin(0x2a, 1)
        for (const item of value) {
          const at = begin(0x0a, 1)
          anyValue(item)
          end(at, 1)
        }
        end(array, 1)
      } else if (value !== null) {
        const list = begin(0x32, 1)
        keyValues(0x0a, value as Attributes)
        end(list, 1)
      }
  }
}

/** The flags' tag takes one byte for a link's (field 6) and two for a span's (field 16). */
function flags(tag: number, traceFlags: number, isRemote: boolean | undefined): void {
  ensure(6)
  buf[pos++] = tag
  if (tag > 0x7f) buf[pos++] = 0x01
  fixed32((traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote ? IS_REMOTE : 0))
}

function status(s: SpanStatus): void {
  const at = begin(0x7a, 1)
  if (s.message) string(0x12, s.message)
  varint(0x18, s.code)
  end(at, 1)
}

function event(e: TimedEvent): void {
  const at = begin(0x5a, 1)
  time(0x09, e.time)
  string(0x12, e.name)
  if (e.attributes) keyValues(0x1a, e.attributes)
  varint(0x20, e.droppedAttributesCount || 0)
  end(at, 1)
}

function link(l: Link): void {
  const at = begin(0x6a, 1)
  const context = l.context
  id(0x0a, context.traceId)
  id(0x12, context.spanId)
  const traceState = context.traceState?.serialize()
  if (traceState) string(0x1a, traceState)
  if (l.attributes) keyValues(0x22, l.attributes)
  varint(0x28, l.droppedAttributesCount || 0)
  flags(0x35, context.traceFlags, context.isRemote)
  end(at, 1)
}

function span(s: ReadableSpan): void {
  // A request span's length takes two bytes.
  const at = begin(0x12, 2)
  const context = s.spanContext()
  id(0x0a, context.traceId)
  id(0x12, context.spanId)
  const traceState = context.traceState?.serialize()
  if (traceState) string(0x1a, traceState)
  const parent = s.parentSpanContext
  if (parent?.spanId) id(0x22, parent.spanId)
  string(0x2a, s.name)
  // The proto's kinds are the API's plus one: 0 is unspecified.
  const kind = s.kind == null ? 0 : s.kind + 1
  if (kind !== 0) varint(0x30, kind)
  time(0x39, s.startTime)
  time(0x41, s.endTime)
  if (s.attributes) keyValues(0x4a, s.attributes)
  varint(0x50, s.droppedAttributesCount)
  for (const e of s.events) event(e)
  varint(0x60, s.droppedEventsCount)
  for (const l of s.links) link(l)
  varint(0x70, s.droppedLinksCount)
  status(s.status)
  flags(0x85, context.traceFlags, parent?.isRemote)
  end(at, 2)
}

function scopeSpans(scope: InstrumentationScope, spans: ReadableSpan[]): void {
  const at = begin(0x12, 3)
  const scopeAt = begin(0x0a, 1)
  string(0x0a, scope.name)
  if (scope.version) string(0x12, scope.version)
  // Not in core's InstrumentationScope type, but written by the official serializer when present.
  const extra = scope as { attributes?: Attributes; droppedAttributesCount?: number }
  if (extra.attributes) keyValues(0x1a, extra.attributes)
  if (extra.droppedAttributesCount) varint(0x20, extra.droppedAttributesCount)
  end(scopeAt, 1)
  for (const s of spans) span(s)
  if (scope.schemaUrl) string(0x1a, scope.schemaUrl)
  end(at, 3)
}

function resourceSpans(resource: Resource, scopes: Map<InstrumentationScope, ReadableSpan[]>): void {
  const at = begin(0x0a, 3)
  const resourceAt = begin(0x0a, 1)
  const attributes = resource.attributes
  if (attributes) keyValues(0x0a, attributes)
  // dropped_attributes_count: always 0, as the official serializer writes it.
  varint(0x10, 0)
  end(resourceAt, 1)
  for (const [scope, spans] of scopes) scopeSpans(scope, spans)
  if (resource.schemaUrl) string(0x1a, resource.schemaUrl)
  end(at, 3)
}

function serializeSpans(spans: ReadableSpan[]): Uint8Array {
  // Grouped by identity, in order of first appearance, as the official serializer does.
  const resources = new Map<Resource, Map<InstrumentationScope, ReadableSpan[]>>()
  for (const s of spans) {
    let scopes = resources.get(s.resource)
    if (scopes === undefined) {
      scopes = new Map()
      resources.set(s.resource, scopes)
    }
    const scope = s.instrumentationScope
    const group = scopes.get(scope)
    if (group === undefined) scopes.set(scope, [s])
    else group.push(s)
  }
  pos = 0
  for (const [resource, scopes] of resources) resourceSpans(resource, scopes)
  const out = new Uint8Array(pos)
  out.set(buf.subarray(0, pos))
  if (buf.length > MAX_KEPT_SIZE) buf = Buffer.allocUnsafe(INITIAL_SIZE)
  return out
}

export const FastProtobufTraceSerializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
  serializeRequest: serializeSpans,
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
}
