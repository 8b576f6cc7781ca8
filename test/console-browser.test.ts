// The console in a real browser (headless Debian Chromium driven by playwright-core) against the real
// `tuft` process on the embedded model: a wrong key is refused in plain words; after signing in, a run
// trained meanwhile through the TypeScript client shows up and its loss curve gains points while the
// page is open; a checkpoint is published and another deleted after a confirmation; the playground
// samples tokens with their logprobs; usage and (for an operator) the server's load show; another
// user's run id in the address is "not found". Every page is saved as a screenshot under test/artifacts/.

import assert from 'node:assert/strict'
import { existsSync, mkdirSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { type Browser, chromium, type Page } from 'playwright-core'
import { datumFromTokens, type TrainingClient } from '../client/index.js'
import { NATIVE_MODEL, type NativeServer, startNativeTuft, USERS } from './helpers/native-server.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname
const missing = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`
if (missing) console.log(`# console browser tests skipped: ${missing}`)

let server: NativeServer
let browser: Browser
let page: Page
let training: TrainingClient

const TOKENS = [9707, 11, 1879, 0, 9707, 11, 1879, 0]

async function step(client: TrainingClient): Promise<void> {
  await Promise.all([
    client.forwardBackward([datumFromTokens(TOKENS)], 'cross_entropy'),
    client.optimStep({ learning_rate: 1e-2 }),
  ])
}

const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}console-${name}.png`, fullPage: true })

/** Polls `check` (the page forbids eval, so no waitForFunction) until it holds; fails after 30 s. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** How many points the first chart on the page (the loss curve) draws. */
const lossPoints = () =>
  page
    .locator('figure.chart')
    .first()
    .getAttribute('data-points')
    .then((n) => Number(n ?? 0))

before(async () => {
  if (missing) return
  mkdirSync(ARTIFACTS, { recursive: true })
  server = await startNativeTuft({ config: { operators: ['ann'] } })
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true })
  page = await browser.newPage({ viewport: { width: 1366, height: 800 } })
  page.setDefaultTimeout(30_000)
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

test('a wrong key is refused in plain words; the right one signs in', { skip: missing }, async () => {
  await page.goto(`${server.baseUrl}/console`)
  await page.getByLabel('API key').fill('tml-not-a-key')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').getByText('did not accept this API key').waitFor()
  await shot('sign-in-error')
  assert.equal(await page.evaluate<string>('document.cookie'), '')

  await page.getByLabel('API key').fill(USERS.ann)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Training runs' }).waitFor()
  assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('tuft.apiKey')"), USERS.ann)
  assert.ok(!page.url().includes(USERS.ann))
})

test('a run trained meanwhile appears, and its loss curve grows while the page is open', {
  skip: missing,
}, async () => {
  training = await server.client(USERS.ann).createLoraTrainingClient(NATIVE_MODEL, { rank: 4, seed: 0 })
  await step(training)
  await page.getByRole('link', { name: training.modelId }).waitFor()
  await shot('runs')

  await page.getByRole('link', { name: training.modelId }).click()
  await page.getByText('Loss by step').waitFor()
  const before = await lossPoints()
  assert.ok(before >= 1)
  for (let i = 0; i < 3; i++) await step(training)
  await until(async () => (await lossPoints()) >= before + 3, 'the loss curve to gain 3 points')
  await page.getByText('grad_norm:mean').first().waitFor()
  await shot('run')
})

test('checkpoints: publish one, delete another after a confirmation', { skip: missing }, async () => {
  const sampler = await training.saveWeightsForSampler('console-sampler')
  await training.saveState('console-state')
  await page.getByRole('link', { name: 'Checkpoints' }).click()
  await page
    .getByRole('button', { name: `Publish ${training.modelId} sampler_weights/console-sampler` })
    .click()
  await page
    .getByRole('button', { name: `Unpublish ${training.modelId} sampler_weights/console-sampler` })
    .waitFor()
  const rest = server.client(USERS.ann).createRestClient()
  const listed = await rest.listUserCheckpoints()
  assert.equal(listed.checkpoints.find((c) => c.tinker_path === sampler)?.public, true)

  const label = `${training.modelId} weights/console-state`
  await page.getByRole('button', { name: `Delete ${label}` }).click()
  await page.getByRole('button', { name: 'Delete for good' }).click()
  await page.getByRole('button', { name: `Delete ${label}` }).waitFor({ state: 'detached' })
  const after = await rest.listUserCheckpoints()
  assert.equal(
    after.checkpoints.some((c) => c.checkpoint_id === 'weights/console-state'),
    false,
  )
  await shot('checkpoints')
})

test('the playground samples from a checkpoint and shows each token with its logprob', {
  skip: missing,
}, async () => {
  await page.getByRole('link', { name: 'Playground' }).click()
  await page
    .getByLabel('Model', { exact: true })
    .selectOption({ label: `tinker://${training.modelId}/sampler_weights/console-sampler` })
  await page.getByLabel('Prompt', { exact: true }).fill('Hello, world')
  await page.getByLabel('Max tokens').fill('6')
  await page.getByLabel('Temperature').fill('0')
  await page.getByRole('button', { name: 'Sample' }).click()
  const rows = page.getByRole('table', { name: 'Sampled tokens and their logprobs' }).locator('tbody tr')
  await rows.first().waitFor()
  assert.ok((await rows.count()) >= 1)
  const logprob = Number(await rows.first().locator('td').nth(3).textContent())
  assert.ok(Number.isFinite(logprob) && logprob <= 0, `logprob ${logprob}`)
  await page.getByText(', chat template applied').waitFor()
  await shot('playground')
})

test('usage shows the metered tokens; an operator also sees everyone and the server', {
  skip: missing,
}, async () => {
  await page.getByRole('link', { name: 'Usage' }).click()
  await page.getByText('Tokens per hour').waitFor()
  await page.getByRole('table', { name: "Every user's usage (operators)" }).waitFor()
  await shot('usage')

  await page.getByRole('link', { name: 'Server' }).click()
  await page
    .getByRole('table', { name: 'Models, their queues and engines' })
    .getByText(NATIVE_MODEL)
    .waitFor()
  await page.getByText('Engine busy fraction').waitFor()
  await shot('server')
})

test("another user's run id in the address is not found", { skip: missing }, async () => {
  const bens = await server.client(USERS.ben).createLoraTrainingClient(NATIVE_MODEL, { rank: 4 })
  await page.goto(`${server.baseUrl}/console/runs/${encodeURIComponent(bens.modelId)}`)
  await page.getByRole('heading', { name: 'Training run not found' }).waitFor()
  await shot('not-found')
})
