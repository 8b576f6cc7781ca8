// Archive links (spec §3.23): the 302's Location is built from server.public_base_url, else from the
// address the server listens on (a wildcard one named by the machine's name), never from the request's
// Host header; and a download token is exactly `<payload>.<signature>`, anything appended is refused.

import assert from 'node:assert/strict'
import { request } from 'node:http'
import { hostname } from 'node:os'
import { test } from 'node:test'
import { ALICE, startTestApp } from './helpers/app.js'
import { createRun, saveCheckpoint } from './helpers/conformance.js'
import { assertError, listen } from './helpers/http.js'

/** The archive redirect's Location, asked with a forged Host header (fetch would not send one). */
function archiveLocation(base: string, run: string, name: string): Promise<string> {
  const url = new URL(`${base}/api/v1/training_runs/${run}/checkpoints/weights/${name}/archive`)
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host: 'evil.example:666', 'x-api-key': ALICE } }, (res) => {
      res.resume()
      if (res.statusCode !== 302) reject(new Error(`archive answered ${res.statusCode}`))
      else resolve(String(res.headers.location))
    })
    req.on('error', reject)
    req.end()
  })
}

test('the archive link comes from the listen address, never from Host; trailing token data is refused', async () => {
  const t = await startTestApp()
  try {
    const base = await listen(t.app)
    const { modelId } = await createRun(base, ALICE)
    await saveCheckpoint(base, ALICE, modelId, 1, 'w')
    const location = await archiveLocation(base, modelId, 'w')
    assert.ok(location.startsWith(`${base}/api/v1/checkpoint_archives/`), location)
    assert.equal((await fetch(location)).status, 200)

    const token = location.slice(location.lastIndexOf('/') + 1)
    for (const forged of [`${token}.x`, `${token}.`, `.${token}`, `${token}%20`, `${token}%0a`]) {
      const res = await fetch(`${base}/api/v1/checkpoint_archives/${forged}`)
      const text = await res.text()
      assertError(
        { status: res.status, headers: res.headers, text, json: JSON.parse(text) },
        404,
        /archive link/,
      )
    }
  } finally {
    await t.close()
  }
})

test('public_base_url is the archive link base; a wildcard listen address becomes the machine name', async () => {
  const configured = await startTestApp({ server: { public_base_url: 'https://tuft.example/base/' } })
  try {
    const base = await listen(configured.app)
    const { modelId } = await createRun(base, ALICE)
    await saveCheckpoint(base, ALICE, modelId, 1, 'w')
    const location = await archiveLocation(base, modelId, 'w')
    assert.ok(location.startsWith('https://tuft.example/base/api/v1/checkpoint_archives/'), location)
  } finally {
    await configured.close()
  }

  const wildcard = await startTestApp()
  try {
    await wildcard.app.listen({ host: '0.0.0.0', port: 0 })
    const { port } = wildcard.app.server.address() as { port: number }
    const base = `http://127.0.0.1:${port}`
    const { modelId } = await createRun(base, ALICE)
    await saveCheckpoint(base, ALICE, modelId, 1, 'w')
    const location = await archiveLocation(base, modelId, 'w')
    assert.ok(location.startsWith(`http://${hostname()}:${port}/api/v1/checkpoint_archives/`), location)
  } finally {
    await wildcard.close()
  }
})
