// The console's chart series: one value per optimizer step, reduced as Tinker's metric names say.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { seriesOf } from '../plugins/console/ui/metrics.js'
import type { MetricPoint } from '../plugins/console/ui/types.js'

const point = (
  n: number,
  kind: MetricPoint['kind'],
  step: number,
  metrics: Record<string, number>,
): MetricPoint => ({
  n,
  kind,
  step,
  seq_id: n + 1,
  time: '2026-01-01T00:00:00Z',
  metrics,
})

test('passes of one step add up (:sum), average (:mean) or keep the extreme (:max); kinds stay apart', () => {
  const series = seriesOf([
    point(0, 'forward_backward', 0, { 'loss:sum': 3 }),
    point(1, 'forward_backward', 0, { 'loss:sum': 2 }),
    point(2, 'optim_step', 1, { 'grad_norm:mean': 4, 'step:max': 1 }),
    point(3, 'forward_backward', 1, { 'loss:sum': 1, 'acc:mean': 0.5 }),
    point(4, 'forward_backward', 1, { 'loss:sum': 1, 'acc:mean': 1 }),
    point(5, 'forward', 1, { 'loss:sum': 7 }),
  ])
  assert.deepEqual(series, [
    {
      label: 'forward_backward loss:sum',
      points: [
        [0, 5],
        [1, 2],
      ],
    },
    { label: 'optim_step grad_norm:mean', points: [[1, 4]] },
    { label: 'optim_step step:max', points: [[1, 1]] },
    { label: 'forward_backward acc:mean', points: [[1, 0.75]] },
    { label: 'forward loss:sum', points: [[1, 7]] },
  ])
})
