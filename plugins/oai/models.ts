// GET /models: vLLM's model cards for what the caller may sample: the base models, the caller's sampler
// checkpoints and the published ones (tinker:// paths, parent = their base model), and, for operators,
// the adapters loaded at runtime (root = their directory, parent = the base model), as vLLM lists them.

import type { FastifyInstance } from 'fastify'
import { formatTinkerPath } from '../../core/wire/paths.js'
import { isOperator, userOf } from '../auth.js'
import type { OaiContext } from './context.js'

interface ModelCard {
  id: string
  object: 'model'
  created: number
  owned_by: string
  root: string
  parent: string | null
  max_model_len: number | null
}

export default async function modelRoutes(app: FastifyInstance, ctx: OaiContext): Promise<void> {
  const owner = app.tuftConfig.model_owner
  const seconds = (ms: number) => Math.floor(ms / 1000)
  const booted = Date.now()
  app.get('/models', async (request) => {
    const user = userOf(request)
    const hosts = app.models.list().filter((h) => h.supports('sampling'))
    const contextOf = (name: string) => {
      const context = hosts.find((h) => h.name === name)?.maxContext() ?? 0
      return context > 0 ? context : null
    }
    const card = (id: string, created: number, root: string, parent: string | null): ModelCard => ({
      id,
      object: 'model',
      created: seconds(created),
      owned_by: owner,
      root,
      parent,
      max_model_len: contextOf(parent ?? id),
    })
    const { checkpoints } = app.tuft
    const own = await checkpoints.listOwned(user)
    const published = (await checkpoints.listPublic()).filter((c) => c.owner !== user)
    const samplers = [...own, ...published].filter(
      (c) => c.kind === 'sampler_weights' && hosts.some((h) => h.name === c.baseModel),
    )
    const data = [
      ...hosts.map((h) => card(h.name, booted, h.name, null)),
      ...samplers.map((c) => card(formatTinkerPath(c), c.createdAt, formatTinkerPath(c), c.baseModel)),
      ...(isOperator(app.tuftConfig, user)
        ? ctx.loras.list().map((l) => card(l.name, l.createdAt, l.path, l.host.name))
        : []),
    ]
    return { object: 'list', data }
  })
}
