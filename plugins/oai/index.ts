// The OpenAI-compatible inference API (README "OpenAI-compatible API"): OpenAI's and vLLM's routes under
// /oai/api/v1 (Tinker's path) and /v1 (vLLM's), plus vLLM's root-level /health, /tokenize and
// /detokenize, so that tuft can stand in for a `vllm serve` (engines/vllm drives either). Errors are in
// OpenAI's shape; sampling goes through the same services as the Tinker routes.

import { Ajv } from 'ajv'
import type { FastifyInstance } from 'fastify'
import { tuftError } from '../../core/errors.js'
import chatRoutes from './chat.js'
import completionRoutes from './completions.js'
import type { OaiContext } from './context.js'
import { useOaiErrors } from './errors.js'
import healthRoutes from './health.js'
import loraAdapterRoutes from './lora-adapters.js'
import { LoraRegistry } from './lora-registry.js'
import modelRoutes from './models.js'
import tokenizeRoutes from './tokenize.js'

/**
 * Bodies are checked as sent: Fastify's default coercion would turn a token-id prompt into a list of
 * strings (the first union branch that coerces), and "5" into 5, neither of which vLLM does.
 */
const ajv = new Ajv({ allErrors: false, allowUnionTypes: true, strict: false })

export const OAI_PREFIXES = ['/oai/api/v1', '/v1'] as const

type Routes = (app: FastifyInstance, ctx: OaiContext) => Promise<void>

export default async function oaiApi(app: FastifyInstance): Promise<void> {
  const config = app.tuftConfig.openai_api
  const ctx: OaiContext = { loras: new LoraRegistry(config.lora_roots), texts: app.modelTexts }
  const routes: Routes[] = [modelRoutes, completionRoutes, chatRoutes, tokenizeRoutes, healthRoutes]
  if (config.runtime_lora_updating) routes.push(loraAdapterRoutes)
  const mount = (list: Routes[]) => async (scope: FastifyInstance) => {
    useOaiErrors(scope)
    scope.setValidatorCompiler(({ schema }) => ajv.compile(schema))
    for (const r of list) await r(scope, ctx)
  }
  for (const prefix of OAI_PREFIXES) {
    await app.register(
      async (scope) => {
        await mount(routes)(scope)
        scope.setNotFoundHandler(async (request) => {
          throw tuftError('TUFT_NOT_FOUND', `No route for ${request.method} ${request.url.split('?')[0]}`)
        })
      },
      { prefix },
    )
  }
  // Where vLLM serves them.
  await app.register(mount([healthRoutes, tokenizeRoutes]))
}
