// What a request's `model` names, for the caller: a base model, a Tinker checkpoint path
// (`tinker://<run>/sampler_weights/<name>`, or `<base model>;<path>` as Tinker accepts), or, for
// operators, an adapter loaded at runtime. Checkpoints resolve only for their owner or when published;
// anything else is vLLM's 404 "model does not exist", so another user's adapter is indistinguishable
// from a missing one.

import type { FastifyInstance } from 'fastify'
import { isTuftError, tuftError } from '../../core/errors.js'
import type { LocalAdapter } from '../../core/services/adapter-cache.js'
import type { ModelHost } from '../../core/services/models.js'
import { isOperator } from '../auth.js'
import type { LoraRegistry } from './lora-registry.js'

export interface Target {
  host: ModelHost
  /** null: the base model alone. */
  ref: LocalAdapter | null
  /** The model as the client named it (answers echo it). */
  model: string
}

const notFound = (model: string) => tuftError('TUFT_NOT_FOUND', `The model \`${model}\` does not exist.`)

/** The sampling-capable model a request without `model` gets (vLLM serves one model). */
function defaultHost(app: FastifyInstance): ModelHost {
  const host = app.models.list().find((h) => h.supports('sampling'))
  if (!host) throw tuftError('TUFT_BAD_REQUEST', 'No model of this server samples')
  return host
}

export async function resolveTarget(
  app: FastifyInstance,
  loras: LoraRegistry,
  userId: string,
  model: string | null | undefined,
): Promise<Target> {
  if (model === undefined || model === null || model === '') {
    const host = defaultHost(app)
    return { host, ref: null, model: host.name }
  }
  const sep = model.indexOf(';')
  const base = sep >= 0 ? model.slice(0, sep) : null
  const path = sep >= 0 ? model.slice(sep + 1) : model
  let target: Target
  if (path.startsWith('tinker://')) {
    const c = await app.tuft.checkpoints.readablePath(userId, path).catch((err: unknown) => {
      throw isTuftError(err) && err.statusCode === 404 ? notFound(model) : err
    })
    target = { host: app.models.get(c.baseModel), ref: app.tuft.samplers.checkpointRef(c), model }
  } else {
    const lora = loras.get(path)
    if (lora && isOperator(app.tuftConfig, userId)) {
      target = { host: lora.host, ref: lora.ref, model }
    } else {
      const host = app.models.list().find((h) => h.name === path)
      if (!host) throw notFound(model)
      target = { host, ref: null, model }
    }
  }
  if (base !== null && base !== target.host.name) {
    throw tuftError('TUFT_BAD_REQUEST', `'${path}' was trained on '${target.host.name}', not '${base}'`)
  }
  if (!target.host.supports('sampling')) {
    throw tuftError('TUFT_BAD_REQUEST', `Model '${target.host.name}' is configured for training only`)
  }
  return target
}
