// The published package, as a user gets it: `npm pack` (which builds dist/), installed with the example
// third-party provider (engines/example-provider) into a fresh folder, then used from plain Node 20
// without tsx: tuft/client and tuft/engine import, the engine conformance suite runs from the installed
// package against the native engine and against the example provider, and a tuft.yaml naming the
// provider by package serves it to the installed client.
//
// Cost and limits: the install takes packages from npm's cache (--prefer-offline: `npm ci` filled it;
// package metadata comes from the registry when the cache has none). Install scripts are skipped, so the
// native addon is not rebuilt there (minutes of C++): the one built by `npm ci` is copied in instead, and
// that the package holds everything the install-time build needs is checked from its file list.

import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { isTuftError, TuftError } from '../core/errors.js'

const ROOT = new URL('../', import.meta.url).pathname
const ADDON = 'engines/native/build/Release/tuft_engine.node'
const PROVIDER = 'tuft-engine-bigram'

/** tsx's loader, node:test's protocol for its own children, the npm run that started us. */
const PARENT_ONLY = new Set(['NODE_OPTIONS', 'NODE_TEST_CONTEXT', 'INIT_CWD'])

/** The environment of a plain user shell: no tsx loader, no settings of the npm run that started us. */
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!PARENT_ONLY.has(k) && !k.startsWith('npm_')) env[k] = v
  }
  return env
}

function run(cmd: string, args: string[], cwd: string): string {
  const started = Date.now()
  const r = spawnSync(cmd, args, { cwd, env: plainEnv(), encoding: 'utf8', maxBuffer: 64 * 2 ** 20 })
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`)
  console.log(
    `# ${cmd === process.execPath ? 'node' : cmd} ${args[0]}: ${((Date.now() - started) / 1000).toFixed(1)} s`,
  )
  return r.stdout
}

const node = (args: string[], cwd: string) => run(process.execPath, args, cwd)

let dir: string
let app: string
let installed: string

before(
  () => {
    dir = mkdtempSync(join(tmpdir(), 'tuft-package-'))
    const tarball = join(
      dir,
      run('npm', ['pack', '--pack-destination', dir, '--silent'], ROOT).trim().split('\n').at(-1)!,
    )
    // The third-party provider, as its author has it: a folder of its own outside this repository.
    const provider = join(dir, PROVIDER)
    cpSync(join(ROOT, 'engines', 'example-provider'), provider, { recursive: true })
    app = join(dir, 'app')
    mkdirSync(app)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
    // --install-links copies the provider in (a symlink would resolve tuft/engine from its own folder).
    run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--ignore-scripts',
        '--install-links',
        '--no-audit',
        '--no-fund',
        tarball,
        provider,
      ],
      app,
    )
    installed = join(app, 'node_modules', 'tuft')
    mkdirSync(join(installed, 'engines/native/build/Release'), { recursive: true })
    copyFileSync(join(ROOT, ADDON), join(installed, ADDON))
  },
  { timeout: 300_000 },
)

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

test('the package holds the compiled entries, the native sources, the fixtures and no tests', () => {
  for (const path of [
    'dist/client/index.js',
    'dist/client/index.d.ts',
    'dist/engines/sdk.js',
    'dist/engines/sdk.d.ts',
    'dist/engines/native/index.js',
    'dist/core/wire/tinker_public.proto',
    'scripts/build-native.mjs',
    'engines/native/package.json',
    'engines/native/CMakeLists.txt',
    'engines/native/include/engine.h',
    'bin/tuft.js',
    'test/fixtures/reference/qwen3/model/model.safetensors',
    'test/fixtures/reference/qwen3/expected.json',
  ]) {
    assert.ok(existsSync(join(installed, path)), `the package lacks ${path}`)
  }
  const files = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name).slice(installed.length + 1)],
    )
  const all = files(installed)
  assert.ok(
    all.some((f) => f.startsWith('engines/native/src/')),
    'the C++ sources are packed',
  )
  assert.deepEqual(
    all.filter((f) => f.endsWith('.test.ts') || f.includes('/build/CMake')),
    [],
    'no tests, no build tree',
  )
})

test('tuft/client and tuft/engine import in plain Node, without tsx', () => {
  const check = (specifier: string, name: string) =>
    node(['-e', `import('${specifier}').then((m) => { if (!m.${name}) process.exit(3) })`], app)
  check('tuft/client', 'ServiceClient')
  check('tuft/engine', 'engineConformance')
  check('tuft/engines/native', 'default')
})

test("the server recognises coded errors thrown by the installed package's copy of tuftError", async () => {
  const copy = (await import(join(installed, 'dist/core/errors.js'))) as typeof import('../core/errors.js')
  const err: unknown = copy.tuftError('TUFT_BAD_REQUEST', 'from a third-party engine')
  assert.ok(!(err instanceof TuftError), 'two copies of the module: instanceof cannot tell')
  assert.ok(isTuftError(err), 'the brand is shared')
  assert.equal((err as TuftError).statusCode, 400)
})

test('the installed conformance suite passes for the native engine and the example provider', {
  timeout: 120_000,
}, () => {
  writeFileSync(
    join(app, 'native.test.mjs'),
    [
      "import { engineConformance } from 'tuft/engine'",
      "import native from 'tuft/engines/native'",
      'engineConformance(native, { options: { threads: 2 } })',
      '',
    ].join('\n'),
  )
  // The provider's own test file, as shipped in its package.
  const out = node(['--test', 'native.test.mjs', `node_modules/${PROVIDER}/conformance.test.js`], app)
  assert.match(out, /^ok \d+ - engine conformance: native$/m)
  assert.match(out, new RegExp(`^ok \\d+ - engine conformance: ${PROVIDER}$`, 'm'))
  assert.match(out, /^# fail 0$/m)
})

test('tuft.yaml names the provider by package; the installed client trains and samples with it', {
  timeout: 120_000,
}, async () => {
  writeFileSync(
    join(app, 'tuft.yaml'),
    [
      'port: 0',
      'checkpoint_dir: ./checkpoints',
      'model_cache_dir: ./models',
      'supported_models:',
      '  - model_name: example/bigram',
      '    model_path: node_modules/tuft/test/fixtures/reference/qwen3/model',
      '    max_lora_rank: 16',
      `    training: { provider: ${PROVIDER} }`,
      `    sampling: { provider: ${PROVIDER} }`,
      '',
    ].join('\n'),
  )
  const server = spawn(process.execPath, ['node_modules/tuft/bin/tuft.js', '--config', 'tuft.yaml'], {
    cwd: app,
    env: plainEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  try {
    const base = await listening(server)
    writeFileSync(
      join(app, 'quickstart.mjs'),
      [
        "import { datumFromTokens, ServiceClient } from 'tuft/client'",
        "const client = new ServiceClient({ baseUrl: process.argv[2], apiKey: 'tml-local-dev-key' })",
        "const training = await client.createLoraTrainingClient('example/bigram', { rank: 8, seed: 1 })",
        'const datum = datumFromTokens([5, 9, 14, 20, 27, 35])',
        'const losses = []',
        'for (let step = 0; step < 12; step++) {',
        "  losses.push((await training.forwardBackward([datum], 'cross_entropy')).metrics['loss:sum'])",
        '  await training.optimStep({ learning_rate: 0.2 })',
        '}',
        'const sampler = await training.saveWeightsAndGetSamplingClient()',
        'const greedy = await sampler.sample([5], 1, { max_tokens: 5, temperature: 0 })',
        'console.log(JSON.stringify({ losses, tokens: greedy.sequences[0].tokens }))',
        '',
      ].join('\n'),
    )
    const r = JSON.parse(node(['quickstart.mjs', base], app)) as { losses: number[]; tokens: number[] }
    assert.ok(r.losses.at(-1)! < r.losses[0]! / 4, `loss fell from ${r.losses[0]} to ${r.losses.at(-1)}`)
    assert.deepEqual(
      r.tokens,
      [9, 14, 20, 27, 35],
      `the trained adapter reached the sampler (as PEFT files): ${JSON.stringify(r)}`,
    )
    const ready = await fetch(`${base}/api/v1/readyz`)
    assert.equal(ready.status, 200)
  } finally {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve))
      server.kill('SIGTERM')
      await exited
    }
  }
})

/** The server's address once it says all models are loaded. */
function listening(server: ChildProcess): Promise<string> {
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tuft did not become ready:\n${out}`)), 60_000)
    server.once('exit', (code) => reject(new Error(`tuft exited with ${code}:\n${out}`)))
    const read = (b: Buffer) => {
      out += b.toString()
      if (!out.includes('"tuft ready: all models loaded"')) return
      const line = out.split('\n').find((l) => l.includes('"tuft listening"'))
      clearTimeout(timer)
      resolve((JSON.parse(line!) as { address: string }).address)
    }
    server.stdout!.on('data', read)
    server.stderr!.on('data', read)
  })
}
