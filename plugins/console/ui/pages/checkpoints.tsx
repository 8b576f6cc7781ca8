// The user's checkpoints: type, size, time, expiry and public flag; publish / unpublish, set or clear a
// TTL, delete (after a confirmation) and download the archive.

import { useCallback, useEffect, useState } from 'preact/hooks'
import { api, errorText, request } from '../api.js'
import { Busy, bytes, ErrorLine, when } from '../components/status.js'
import type { Checkpoint } from '../types.js'

/** The training run a checkpoint belongs to: `tinker://<run>/<checkpoint_id>`. */
export function runOf(c: Checkpoint): string {
  return c.tinker_path.slice('tinker://'.length, -(c.checkpoint_id.length + 1))
}

/** The REST path of a checkpoint (the checkpoint id keeps its `/`: it is the route's wildcard tail). */
const checkpointPath = (c: Checkpoint) =>
  `/api/v1/training_runs/${encodeURIComponent(runOf(c))}/checkpoints/${c.checkpoint_id
    .split('/')
    .map(encodeURIComponent)
    .join('/')}`

function expiry(c: Checkpoint): string {
  if (!c.expires_at) return 'never'
  const minutes = Math.round((Date.parse(c.expires_at) - Date.now()) / 60_000)
  const left = minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`
  return `${when(c.expires_at)} (in ${left})`
}

/**
 * The archive route answers with a redirect to a signed, self-authorising link: fetch it with the key,
 * stop once the redirect has been followed, and let the browser download from the signed link.
 */
async function download(c: Checkpoint): Promise<void> {
  const abort = new AbortController()
  const res = await request(`${checkpointPath(c)}/archive`, { signal: abort.signal })
  abort.abort()
  const a = document.createElement('a')
  a.href = res.url
  a.download = ''
  a.click()
}

function Row({
  c,
  changed,
  report,
}: {
  c: Checkpoint
  changed: () => void
  report: (e: string | null) => void
}) {
  const [ttl, setTtl] = useState('')
  const [confirming, setConfirming] = useState(false)
  const [working, setWorking] = useState(false)
  const path = checkpointPath(c)
  const label = `${runOf(c)} ${c.checkpoint_id}`

  const act = async (work: () => Promise<unknown>) => {
    setWorking(true)
    report(null)
    try {
      await work()
      changed()
    } catch (err) {
      report(errorText(err))
    } finally {
      setWorking(false)
    }
  }
  const seconds = Number(ttl)
  return (
    <tr>
      <td>
        <code>{c.checkpoint_id}</code>
        <div class="muted small">{runOf(c)}</div>
      </td>
      <td>{c.checkpoint_type}</td>
      <td>{bytes(c.size_bytes)}</td>
      <td>{when(c.time)}</td>
      <td>{expiry(c)}</td>
      <td>{c.public ? 'public' : 'private'}</td>
      <td class="actions">
        <button
          type="button"
          disabled={working}
          aria-label={`${c.public ? 'Unpublish' : 'Publish'} ${label}`}
          onClick={() => act(() => api(`${path}/publish`, { method: c.public ? 'DELETE' : 'POST' }))}
        >
          {c.public ? 'Unpublish' : 'Publish'}
        </button>
        <span class="ttl">
          <label class="visually-hidden" for={`ttl-${label}`}>
            TTL in seconds for {label}
          </label>
          <input
            id={`ttl-${label}`}
            type="number"
            min="1"
            placeholder="TTL (s)"
            value={ttl}
            onInput={(e) => setTtl((e.currentTarget as HTMLInputElement).value)}
          />
          <button
            type="button"
            disabled={working || !(seconds > 0)}
            aria-label={`Set TTL of ${label}`}
            onClick={() => act(() => api(`${path}/ttl`, { method: 'PUT', json: { ttl_seconds: seconds } }))}
          >
            Set TTL
          </button>
          {c.expires_at && (
            <button
              type="button"
              disabled={working}
              aria-label={`Remove the TTL of ${label}`}
              onClick={() => act(() => api(`${path}/ttl`, { method: 'PUT', json: { ttl_seconds: null } }))}
            >
              Keep forever
            </button>
          )}
        </span>
        <button
          type="button"
          disabled={working}
          aria-label={`Download ${label}`}
          onClick={() => act(() => download(c))}
        >
          Download
        </button>
        {confirming ? (
          <fieldset class="confirm" aria-label={`Confirm deleting ${label}`}>
            <button
              type="button"
              class="danger"
              disabled={working}
              onClick={() => act(() => api(path, { method: 'DELETE' }))}
            >
              Delete for good
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </fieldset>
        ) : (
          <button
            type="button"
            disabled={working}
            aria-label={`Delete ${label}`}
            onClick={() => setConfirming(true)}
          >
            Delete
          </button>
        )}
      </td>
    </tr>
  )
}

export function Checkpoints() {
  const [list, setList] = useState<Checkpoint[] | null>(null)
  const [error, setError] = useState<string | null>(null)

  const load = useCallback(async () => {
    try {
      const { checkpoints } = await api<{ checkpoints: Checkpoint[] }>('/api/v1/checkpoints?limit=1000')
      setList(checkpoints.sort((a, b) => Date.parse(b.time) - Date.parse(a.time)))
    } catch (err) {
      setError(errorText(err))
    }
  }, [])
  useEffect(() => {
    void load()
  }, [load])

  return (
    <>
      <h1 tabIndex={-1}>Checkpoints</h1>
      <ErrorLine error={error} />
      {list === null && error === null && <Busy what="Loading your checkpoints" />}
      {list !== null && list.length === 0 && (
        <p>No checkpoints yet: save_state and save_weights_for_sampler make them.</p>
      )}
      {list !== null && list.length > 0 && (
        <table>
          <caption class="visually-hidden">Your checkpoints</caption>
          <thead>
            <tr>
              <th scope="col">Checkpoint</th>
              <th scope="col">Type</th>
              <th scope="col">Size</th>
              <th scope="col">Saved</th>
              <th scope="col">Expires</th>
              <th scope="col">Visibility</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {list.map((c) => (
              <Row key={c.tinker_path} c={c} changed={load} report={setError} />
            ))}
          </tbody>
        </table>
      )}
    </>
  )
}
