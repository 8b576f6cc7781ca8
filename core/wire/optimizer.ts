// Optimizer selection on the wire (SDK ≥ 0.29.1, spec sdk-after-0.25.md §3): create_model carries
// `optimizer_config` ({"type": "adamw"} by default, or {"type": "dimuon", "version": 1}) and optim_step
// carries its step hyperparameters as `optim_params` (AdamParams, or DimuonParams with type "dimuon")
// where 0.25 sent `adam_params`. This server implements AdamW only: every other optimizer is refused by
// name, never run as AdamW.

import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { tuftError } from '../errors.js'
import { AdamParams, withAdamDefaults } from './schema-parts.js'

/** Its `type` names the family; the family's own fields travel with it. */
export const OptimizerConfig = Type.Object({ type: Type.String() }, { additionalProperties: true })
/** AdamParams (no `type`, or "adamw") or another family's step parameters (named by `type`). */
export const OptimParams = Type.Object({ type: Type.Optional(Type.String()) }, { additionalProperties: true })

const ADAMW = 'adamw'

function refuse(family: string): never {
  throw tuftError(
    'TUFT_BAD_REQUEST',
    `Optimizer '${family}' is not supported by this server; only AdamW ('${ADAMW}') is available`,
  )
}

/** Refuses an optimizer_config for any family but AdamW (absent means AdamW, as for SDK 0.25). */
export function checkOptimizerConfig(config: Static<typeof OptimizerConfig> | null | undefined): void {
  if (config && config.type !== ADAMW) refuse(config.type)
}

/**
 * The AdamW step parameters of an optim_step body, from `adam_params` (SDK 0.25) or `optim_params`
 * (SDK ≥ 0.29.1), with the §5.9 defaults; other families are refused by name.
 */
export function adamParamsOf(body: { adam_params?: unknown; optim_params?: unknown }): AdamParams {
  const given = body.optim_params ?? body.adam_params
  if (given === undefined || given === null)
    throw tuftError('TUFT_BAD_REQUEST', 'optim_step needs adam_params or optim_params')
  const { type, ...fields } = given as { type?: unknown }
  if (type !== undefined && type !== ADAMW) refuse(String(type))
  const params = withAdamDefaults(fields as Partial<AdamParams>)
  if (!Value.Check(AdamParams, params)) {
    const first = Value.Errors(AdamParams, params).First()
    throw tuftError('TUFT_BAD_REQUEST', `optim_params${first?.path ?? ''}: ${first?.message ?? 'invalid'}`)
  }
  return params
}
