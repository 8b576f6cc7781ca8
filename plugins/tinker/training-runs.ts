// Training-run REST routes (spec §3.22): the caller's runs (plus, for access_scope=accessible, runs
// whose checkpoints others published), newest activity first, with the checkpoints the caller can see.

import type { FastifyInstance } from 'fastify'
import { type CheckpointRecord, canReadCheckpoint } from '../../core/domain/checkpoint.js'
import { activityAt, type TrainingRunRecord, toWireTrainingRun } from '../../core/domain/training-run.js'
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
  const wire = async (user: string, run: TrainingRunRecord) =>
    toWireTrainingRun(run, await visibleCheckpoints(user, run), user)

  const visibleCheckpoints = async (user: string, run: TrainingRunRecord) =>
    (await checkpoints.listRun(run.id)).filter((c) => canReadCheckpoint(c, user))

  /** Other users' runs that hold at least one published checkpoint, with their published checkpoints. */
  const sharedRuns = async (user: string): Promise<Map<TrainingRunRecord, CheckpointRecord[]>> => {
    const published = new Map<string, CheckpointRecord[]>()
    for (const c of await checkpoints.listPublic()) {
      if (c.owner !== user) published.set(c.runId, [...(published.get(c.runId) ?? []), c])
    }
    const shared = new Map<TrainingRunRecord, CheckpointRecord[]>()
    for (const [id, list] of published) {
      const run = await training.findRun(id)
      if (run !== null) shared.set(run, list)
    }
    return shared
  }

  app.get<{ Querystring: ListTrainingRunsQuery }>(
    '/training_runs',
    { schema: ListTrainingRunsRoute },
    async (request) => {
      const user = userOf(request)
      const { limit, offset, access_scope, project_id } = request.query
      let runs = await training.listRuns(user)
      const activity = new Map(runs.map((r) => [r, r.lastRequestAt]))
      if (access_scope === 'accessible') {
        for (const [run, published] of await sharedRuns(user)) {
          runs.push(run)
          activity.set(run, activityAt(run, published, user))
        }
      }
      // Project ids are their owner's: another user's run never matches one (nor reveals it).
      if (project_id !== undefined) runs = runs.filter((r) => r.owner === user && r.projectId === project_id)
      runs.sort((a, b) => activity.get(b)! - activity.get(a)!)
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
