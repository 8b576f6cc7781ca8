import assert from 'node:assert/strict'
import { test } from 'node:test'
import { chooseOpenblasCore, openblasCoreType } from './openblas-core.js'

const cpu = (vendor: string, flags: string) =>
  `processor\t: 0\nvendor_id\t: ${vendor}\ncpu family\t: 6\nflags\t\t: fpu sse sse2 ${flags}\n\nprocessor\t: 1\n`

test('Intel CPUs with the AVX-512 subsets of SkylakeX get its kernels', () => {
  assert.equal(
    openblasCoreType(cpu('GenuineIntel', 'avx2 avx512f avx512cd avx512bw avx512dq avx512vl avx512_bf16')),
    'SkylakeX',
  )
})

test('other CPUs keep OpenBLAS own choice', () => {
  assert.equal(openblasCoreType(cpu('GenuineIntel', 'avx2 fma')), undefined)
  assert.equal(openblasCoreType(cpu('GenuineIntel', 'avx512f avx512cd avx512dq avx512vl')), undefined) // no BW
  assert.equal(
    openblasCoreType(cpu('AuthenticAMD', 'avx512f avx512cd avx512bw avx512dq avx512vl')),
    undefined,
  )
  assert.equal(openblasCoreType(''), undefined)
})

test('a core type the user named is kept', () => {
  const env: NodeJS.ProcessEnv = { OPENBLAS_CORETYPE: 'Haswell' }
  chooseOpenblasCore(env)
  assert.equal(env.OPENBLAS_CORETYPE, 'Haswell')
})
