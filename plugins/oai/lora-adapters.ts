// vLLM's runtime adapter endpoints, POST /load_lora_adapter and /unload_lora_adapter, with vLLM's bodies,
// statuses and plain-text success. Registered only with openai_api.runtime_lora_updating (vLLM registers
// them only with VLLM_ALLOW_RUNTIME_LORA_UPDATING), for operators, for directories under lora_roots.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Static, Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import { tuftError } from '../../core/errors.js'
import type { ModelHost } from '../../core/services/models.js'
import { isOperator, userOf } from '../auth.js'
import type { OaiContext } from './context.js'

const LoadRequest = Type.Object({
  lora_name: Type.String({ minLength: 1 }),
  lora_path: Type.String({ minLength: 1 }),
  load_inplace: Type.Optional(Type.Boolean()),
})
const UnloadRequest = Type.Object({
  lora_name: Type.String({ minLength: 1 }),
  lora_int_id: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
})

/** The served model an adapter belongs to: the one its adapter_config.json names, else the first sampling model. */
async function baseOf(app: FastifyInstance, dir: string): Promise<ModelHost> {
  const hosts = app.models.list().filter((h) => h.supports('sampling'))
  const named = await readFile(join(dir, 'adapter_config.json'), 'utf8')
    .then((s) => (JSON.parse(s) as { base_model_name_or_path?: string }).base_model_name_or_path)
    .catch(() => undefined)
  const host = hosts.find((h) => h.name === named) ?? hosts[0]
  if (!host) throw tuftError('TUFT_BAD_REQUEST', 'No model of this server samples')
  return host
}

export default async function loraAdapterRoutes(app: FastifyInstance, ctx: OaiContext): Promise<void> {
  let loads = 0
  const operatorOnly = (user: string) => {
    if (!isOperator(app.tuftConfig, user))
      throw tuftError('TUFT_FORBIDDEN', `User '${user}' may not load adapters (operators)`)
  }

  app.post<{ Body: Static<typeof LoadRequest> }>(
    '/load_lora_adapter',
    { schema: { body: LoadRequest } },
    async (request, reply) => {
      operatorOnly(userOf(request))
      const { lora_name: name, lora_path: path, load_inplace: inplace } = request.body
      if (!inplace) ctx.loras.checkFree(name)
      const dir = await ctx.loras.checkPath(path)
      const host = await baseOf(app, dir)
      await host.whenReady()
      // A fresh engine id per load: a reload never reuses an adapter the engine is still unloading.
      const ref = { kind: 'peft' as const, id: `lora:${name}#${++loads}`, dir }
      // Loading now checks the weights, as vLLM does: a bad adapter fails here, not on its first request.
      ;(await app.tuft.samplers.acquire(host, ref)).release()
      const old = inplace ? ctx.loras.get(name) : undefined
      if (old) {
        ctx.loras.remove(name)
        app.tuft.samplers.retire(old.host, old.ref)
      }
      ctx.loras.add({ name, path, host, ref, createdAt: Date.now() })
      request.log.info({ lora: name, path }, 'runtime adapter loaded')
      return reply
        .type('text/plain; charset=utf-8')
        .send(`Success: LoRA adapter '${name}' added successfully.`)
    },
  )

  app.post<{ Body: Static<typeof UnloadRequest> }>(
    '/unload_lora_adapter',
    { schema: { body: UnloadRequest } },
    async (request, reply) => {
      operatorOnly(userOf(request))
      const lora = ctx.loras.remove(request.body.lora_name)
      app.tuft.samplers.retire(lora.host, lora.ref)
      request.log.info({ lora: lora.name }, 'runtime adapter unloaded')
      return reply
        .type('text/plain; charset=utf-8')
        .send(`Success: LoRA adapter '${lora.name}' removed successfully.`)
    },
  )
}
