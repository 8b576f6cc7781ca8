// Streaming answers as server-sent events (`data: <json>` lines, then `data: [DONE]`), and the text of a
// finished sequence cut into per-token deltas whose concatenation is exactly the non-streamed text.

import { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import type { ModelText } from '../model-text.js'

/** Sends `events` as an event stream ending with `data: [DONE]`. */
export function sendEvents(reply: FastifyReply, events: Iterable<unknown>): FastifyReply {
  function* lines() {
    for (const e of events) yield `data: ${JSON.stringify(e)}\n\n`
    yield 'data: [DONE]\n\n'
  }
  return reply
    .header('cache-control', 'no-cache')
    .type('text/event-stream; charset=utf-8')
    .send(Readable.from(lines()))
}

/** Text that tokens [from, to) of a sequence add. */
export interface TextDelta {
  text: string
  from: number
  to: number
}

/** At most this many deltas per sequence: each one decodes the tokens before it. */
const MAX_DELTAS = 256

/**
 * The deltas of `text` (the finished text of `tokens`) as the tokens arrive: each delta ends where the
 * decoded prefix stops agreeing with the final text (a half-decoded character or a cut stop string waits
 * for later tokens); the last one holds what remains. Joined, they are `text` exactly.
 */
export async function textDeltas(
  tokens: number[],
  text: string,
  model: ModelText,
  skipSpecial: boolean,
): Promise<TextDelta[]> {
  const step = Math.max(1, Math.ceil(tokens.length / MAX_DELTAS))
  const ends: number[] = []
  for (let end = step; end < tokens.length; end += step) ends.push(end)
  const prefixes = await model.prefixes(tokens, ends, skipSpecial)
  const deltas: TextDelta[] = []
  let emitted = 0
  let from = 0
  for (const [e, end] of ends.entries()) {
    const prefix = prefixes[e]!
    let agree = 0
    while (agree < prefix.length && agree < text.length && prefix[agree] === text[agree]) agree++
    deltas.push({ text: text.slice(emitted, Math.max(emitted, agree)), from, to: end })
    emitted = Math.max(emitted, agree)
    from = end
  }
  deltas.push({ text: text.slice(emitted), from, to: tokens.length })
  return deltas
}
