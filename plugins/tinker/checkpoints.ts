// Checkpoint routes (spec §3.17, §3.23): weights_info, listings, and the wildcard routes under
// /training_runs/<run>/checkpoints/* whose tail is a checkpoint id plus an optional action (publish,
// ttl, archive). Archives are served through a 302 to a signed, self-authorising download URL.

import type { FastifyInstance } from 'fastify'
import { toWireCheckpoint } from '../../core/domain/checkpoint.js'
import { hasTiedEmbeddings } from '../../core/services/tied-archive.js'
import { splitCheckpointTail } from '../../core/wire/paths.js'
import {
  CheckpointArchiveRoute,
  type CheckpointParams,
  type CheckpointTtlRequest,
  CheckpointTtlRoute,
  DeleteCheckpointRoute,
  ListRunCheckpointsRoute,
  ListUserCheckpointsRoute,
  PublishCheckpointRoute,
  type WeightsInfoRequest,
  WeightsInfoRoute,
} from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'
import { linkBaseUrl } from '../base-url.js'

/** How long an archive link stays valid (the SDK assumes 15 minutes). */
const ARCHIVE_LINK_MS = 15 * 60 * 1000

export default async function checkpointRoutes(app: FastifyInstance): Promise<void> {
  const { checkpoints, training } = app.tuft
  /** How a checkpoint's archive names its head (core/services/tied-archive.ts); false for a model gone from config. */
  const tiedEmbeddings = (baseModel: string) => {
    const host = app.models.list().find((h) => h.name === baseModel)
    return host !== undefined && hasTiedEmbeddings(host.modelDir())
  }
  app.post<{ Body: WeightsInfoRequest }>('/weights_info', { schema: WeightsInfoRoute }, async (request) => {
    const c = await checkpoints.readablePath(userOf(request), request.body.tinker_path)
    return {
      base_model: c.baseModel,
      is_lora: true,
      lora_rank: c.lora.rank,
      train_unembed: c.lora.trainUnembed,
      train_mlp: c.lora.trainMlp,
      train_attn: c.lora.trainAttn,
    }
  })

  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/checkpoints',
    { schema: ListUserCheckpointsRoute },
    async (request) => {
      const { limit, offset } = request.query
      const all = await checkpoints.listOwned(userOf(request))
      return {
        checkpoints: all.slice(offset, offset + limit).map(toWireCheckpoint),
        cursor: { offset, limit, total_count: all.length },
      }
    },
  )

  app.get<{ Params: { training_run_id: string } }>(
    '/training_runs/:training_run_id/checkpoints',
    { schema: ListRunCheckpointsRoute },
    async (request) => {
      const run = await training.getRun(userOf(request), request.params.training_run_id)
      return { checkpoints: (await checkpoints.listRun(run.id)).map(toWireCheckpoint), cursor: null }
    },
  )

  const TAIL = '/training_runs/:training_run_id/checkpoints/*'

  app.delete<{ Params: CheckpointParams }>(
    TAIL,
    { schema: DeleteCheckpointRoute },
    async (request, reply) => {
      const user = userOf(request)
      const { checkpoint, action } = splitCheckpointTail('DELETE', request.params['*'])
      const c = await checkpoints.owned(user, request.params.training_run_id, checkpoint)
      if (action === 'publish') await checkpoints.setPublic(c, false)
      else await checkpoints.delete(c)
      return reply.code(204).send()
    },
  )

  app.post<{ Params: CheckpointParams }>(TAIL, { schema: PublishCheckpointRoute }, async (request, reply) => {
    const { checkpoint } = splitCheckpointTail('POST', request.params['*'])
    const c = await checkpoints.owned(userOf(request), request.params.training_run_id, checkpoint)
    await checkpoints.setPublic(c, true)
    return reply.code(204).send()
  })

  app.put<{ Params: CheckpointParams; Body: CheckpointTtlRequest }>(
    TAIL,
    { schema: CheckpointTtlRoute },
    async (request, reply) => {
      const { checkpoint } = splitCheckpointTail('PUT', request.params['*'])
      const c = await checkpoints.owned(userOf(request), request.params.training_run_id, checkpoint)
      await checkpoints.setTtl(c, request.body.ttl_seconds)
      return reply.code(204).send()
    },
  )

  app.get<{ Params: CheckpointParams }>(TAIL, { schema: CheckpointArchiveRoute }, async (request, reply) => {
    const user = userOf(request)
    const { checkpoint } = splitCheckpointTail('GET', request.params['*'])
    const c = await checkpoints.readable(user, request.params.training_run_id, checkpoint)
    const expiresAt = Date.now() + ARCHIVE_LINK_MS
    const token = checkpoints.signArchive(user, c, expiresAt)
    return reply
      .code(302)
      .header('location', `${linkBaseUrl(app)}/api/v1/checkpoint_archives/${token}`)
      .header('expires', new Date(expiresAt).toUTCString())
      .send()
  })

  // The signed link itself: no X-API-Key (the SDK's users fetch it with a plain GET).
  app.get<{ Params: { token: string } }>(
    '/checkpoint_archives/:token',
    // Its URL is a bearer credential for 15 minutes: keep it out of the request log.
    { config: { public: true }, logLevel: 'warn' },
    async (request, reply) => {
      const c = await checkpoints.verifyArchive(request.params.token)
      const stream = await checkpoints.archive(c, { tiedEmbeddings: tiedEmbeddings(c.baseModel) })
      const filename = `${c.runId}-${c.kind}-${c.name}.tar.gz`.replace(/[^A-Za-z0-9._-]/g, '_')
      return reply
        .type('application/gzip')
        .header('content-disposition', `attachment; filename="${filename}"`)
        .send(stream)
    },
  )
}
