// Training-run REST routes (spec §3.22): the caller's runs (plus, for access_scope=accessible, runs
// whose checkpoints others published), newest activity first, with the checkpoints the caller can see.

import type { FastifyInstance } from 'fastify'
import { canReadCheckpoint } from '../../core/domain/checkpoint.js'
import { type TrainingRunRecord, toWireTrainingRun } from '../../core/domain/training-run.js'
import { tuftError } from '../../core/errors.js'
import {
  GetTrainingRunRoute,
  type ListTrainingRunsQuery,
  ListTrainingRunsRoute,
} from '../../core/wire/schemas.js'
import { userOf } from '../auth.js'

export default async function trainingRunRoutes(app: FastifyInstance): Promise<void> {
  const { training, checkpoints } = app.tuft

  /** The run in wire form with the checkpoints this caller may see. */
  const wire = async (user: string, run: TrainingRunRecord) => {
    const visible = (await checkpoints.listRun(run.id)).filter((c) => canReadCheckpoint(c, user))
    return toWireTrainingRun(run, visible)
  }

  /** Other users' runs that hold at least one published checkpoint. */
  const sharedRuns = async (user: string): Promise<TrainingRunRecord[]> => {
    const ids = new Set((await checkpoints.listPublic()).filter((c) => c.owner !== user).map((c) => c.runId))
    const runs = await Promise.all([...ids].map((id) => training.findRun(id)))
    return runs.filter((r): r is TrainingRunRecord => r !== null)
  }

  app.get<{ Querystring: ListTrainingRunsQuery }>(
    '/training_runs',
    { schema: ListTrainingRunsRoute },
    async (request) => {
      const user = userOf(request)
      const { limit, offset, access_scope, project_id } = request.query
      let runs = await training.listRuns(user)
      if (access_scope === 'accessible') runs.push(...(await sharedRuns(user)))
      if (project_id !== undefined) runs = runs.filter((r) => r.projectId === project_id)
      runs.sort((a, b) => b.lastRequestAt - a.lastRequestAt)
      const page = runs.slice(offset, offset + limit)
      return {
        training_runs: await Promise.all(page.map((r) => wire(user, r))),
        cursor: { offset, limit, total_count: runs.length },
      }
    },
  )

  app.get<{ Params: { training_run_id: string }; Querystring: { access_scope?: 'owned' | 'accessible' } }>(
    '/training_runs/:training_run_id',
    { schema: GetTrainingRunRoute },
    async (request) => {
      const user = userOf(request)
      const id = request.params.training_run_id
      const run = await training.findRun(id)
      if (run && run.owner === user) return wire(user, run)
      if (run && request.query.access_scope === 'accessible') {
        const shared = (await checkpoints.listRun(id)).some((c) => c.public)
        if (shared) return wire(user, run)
      }
      throw tuftError('TUFT_NOT_FOUND', `Unknown training run '${id}'`)
    },
  )
}
