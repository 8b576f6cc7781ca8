// Strict answer validation, as the SDK does with its typed models (spec §1.6): a response missing a
// required field or carrying a wrong literal is an error, never silently passed on.

import type { Static, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ResponseFormatError } from './errors.js'

export function checked<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  if (Value.Check(schema, value)) return value
  const first = Value.Errors(schema, value).First()
  const where = first ? ` (${first.path || '/'}: ${first.message})` : ''
  throw new ResponseFormatError(`${what}: unexpected answer ${JSON.stringify(value)}${where}`)
}
