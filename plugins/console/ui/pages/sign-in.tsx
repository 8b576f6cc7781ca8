// Sign in with an API key: checked against the server (GET /api/v1/usage) before it is kept.

import { useState } from 'preact/hooks'
import { api, errorText } from '../api.js'
import { ErrorLine } from '../components/status.js'

export function SignIn({ onSignedIn }: { onSignedIn: (key: string) => void }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [checking, setChecking] = useState(false)

  const submit = async (event: Event) => {
    event.preventDefault()
    const trimmed = key.trim()
    if (!trimmed) {
      setError('Enter your API key.')
      return
    }
    setChecking(true)
    setError(null)
    try {
      await api('/api/v1/usage', { key: trimmed })
      onSignedIn(trimmed)
    } catch (err) {
      setError(errorText(err))
    } finally {
      setChecking(false)
    }
  }

  return (
    <main class="sign-in">
      <h1>TuFT console</h1>
      <p>Sign in with your API key to see your training runs, checkpoints and usage.</p>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          placeholder="tml-…"
          value={key}
          onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)}
        />
        <button type="submit" disabled={checking}>
          {checking ? 'Checking…' : 'Sign in'}
        </button>
      </form>
      <ErrorLine error={error} />
      <p class="muted">The key stays in this browser tab only and is sent to this server alone.</p>
    </main>
  )
}
