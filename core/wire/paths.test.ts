// tinker:// paths, checkpoint ids and checkpoint route tails (spec §5.10, §3.23).

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isTuftError } from '../errors.js'
import {
  checkCheckpointName,
  formatCheckpointId,
  formatTinkerPath,
  isValidCheckpointName,
  parseCheckpointId,
  parseTinkerPath,
  splitCheckpointTail,
} from './paths.js'

function rejects(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => isTuftError(err) && err.code === code && pattern.test(err.message))
}

describe('tinker:// paths', () => {
  it('parses and formats the three-segment form', () => {
    const p = parseTinkerPath('tinker://s-1:train:0/sampler_weights/final')
    assert.deepEqual(p, { runId: 's-1:train:0', kind: 'sampler_weights', name: 'final' })
    assert.equal(formatTinkerPath(p), 'tinker://s-1:train:0/sampler_weights/final')
  })

  it('rejects other schemes, segment counts, kinds and names with a 400 quoting the path', () => {
    rejects(() => parseTinkerPath('s3://r/weights/a'), 'TUFT_BAD_REQUEST', /s3:\/\/r\/weights\/a/)
    rejects(() => parseTinkerPath('tinker://r/weights/a/b'), 'TUFT_BAD_REQUEST', /expected/)
    rejects(() => parseTinkerPath('tinker://r/weights'), 'TUFT_BAD_REQUEST', /expected/)
    rejects(() => parseTinkerPath('tinker://r/optimizer/a'), 'TUFT_BAD_REQUEST', /kind/)
    rejects(() => parseTinkerPath('tinker:///weights/a'), 'TUFT_BAD_REQUEST', /run id/)
    rejects(() => parseTinkerPath('tinker://r/weights/..'), 'TUFT_BAD_REQUEST', /name/)
    rejects(() => parseTinkerPath('tinker://r/weights/'), 'TUFT_BAD_REQUEST', /name/)
  })
})

describe('checkpoint ids', () => {
  it('accepts both kinds and bare names', () => {
    assert.deepEqual(parseCheckpointId('weights/step-10'), { kind: 'weights', name: 'step-10' })
    assert.deepEqual(parseCheckpointId('sampler_weights/w'), { kind: 'sampler_weights', name: 'w' })
    assert.deepEqual(parseCheckpointId('step-10'), { kind: null, name: 'step-10' })
    assert.equal(formatCheckpointId('weights', 'a'), 'weights/a')
  })

  it('rejects unknown kinds and unsafe names', () => {
    rejects(() => parseCheckpointId('other/a'), 'TUFT_BAD_REQUEST', /other\/a/)
    rejects(() => parseCheckpointId('weights/a/b'), 'TUFT_BAD_REQUEST', /invalid name/)
    for (const name of ['', '.', '..', 'a\\b', 'a\nb', 'x'.repeat(256)])
      assert.equal(isValidCheckpointName(name), false, name)
    for (const name of ['a', '...', 'step-000100', 'ü', 'x'.repeat(255), 'ü'.repeat(127), '日本'])
      assert.equal(isValidCheckpointName(name), true, name)
  })

  it('counts UTF-8 bytes, and refuses controls and bidirectional controls, saying why', () => {
    rejects(() => checkCheckpointName('ü'.repeat(128)), 'TUFT_BAD_REQUEST', /256 bytes in UTF-8; at most 255/)
    rejects(() => checkCheckpointName('日'.repeat(86)), 'TUFT_BAD_REQUEST', /258 bytes/)
    const refused: [string, string][] = [
      ['a\u0000b', 'U+0000'],
      ['a\u007fb', 'U+007F'],
      ['a\u0085b', 'U+0085'],
      ['a\u2028b', 'U+2028'],
      ['gpj.\u202eexe', 'U+202E'],
      ['a\u202ab', 'U+202A'],
      ['a\u2066b', 'U+2066'],
      ['a\u2069b', 'U+2069'],
      ['a\u200fb', 'U+200F'],
      ['a\u061cb', 'U+061C'],
    ]
    for (const [name, code] of refused)
      rejects(
        () => checkCheckpointName(name),
        'TUFT_BAD_REQUEST',
        new RegExp(`holds ${code.replace('+', '\\+')}`),
      )
    rejects(() => parseTinkerPath('tinker://r/weights/a\u202eb'), 'TUFT_BAD_REQUEST', /U\+202E/)
    assert.equal(checkCheckpointName('step-1'), 'step-1')
  })
})

describe('checkpoint route tails', () => {
  it('maps each method to its action', () => {
    assert.deepEqual(splitCheckpointTail('POST', 'weights/a/publish'), {
      checkpoint: { kind: 'weights', name: 'a' },
      action: 'publish',
    })
    assert.deepEqual(splitCheckpointTail('DELETE', 'weights/a/publish'), {
      checkpoint: { kind: 'weights', name: 'a' },
      action: 'publish',
    })
    assert.deepEqual(splitCheckpointTail('PUT', 'sampler_weights/a/ttl'), {
      checkpoint: { kind: 'sampler_weights', name: 'a' },
      action: 'ttl',
    })
    assert.deepEqual(splitCheckpointTail('GET', 'a/archive'), {
      checkpoint: { kind: null, name: 'a' },
      action: 'archive',
    })
    assert.deepEqual(splitCheckpointTail('DELETE', 'weights/a'), {
      checkpoint: { kind: 'weights', name: 'a' },
      action: null,
    })
  })

  it('deletes a checkpoint named like an action', () => {
    assert.deepEqual(splitCheckpointTail('DELETE', 'weights/publish'), {
      checkpoint: { kind: 'weights', name: 'publish' },
      action: null,
    })
    assert.deepEqual(splitCheckpointTail('POST', 'weights/publish/publish'), {
      checkpoint: { kind: 'weights', name: 'publish' },
      action: 'publish',
    })
  })

  it('answers 404 for a method without its action suffix', () => {
    rejects(() => splitCheckpointTail('GET', 'weights/a'), 'TUFT_NOT_FOUND', /GET/)
    rejects(() => splitCheckpointTail('PUT', 'weights/a/publish'), 'TUFT_NOT_FOUND', /PUT/)
    rejects(() => splitCheckpointTail('PATCH', 'weights/a/ttl'), 'TUFT_NOT_FOUND', /PATCH/)
  })
})
