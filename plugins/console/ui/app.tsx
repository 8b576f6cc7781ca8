// The console's shell: sign-in gate, navigation and the page the address names. Operators (those the
// server lets read GET /api/v1/admin/status) also get the Server page and everyone's usage.

import { useEffect, useState } from 'preact/hooks'
import { api, setApiKey } from './api.js'
import { Checkpoints } from './pages/checkpoints.js'
import { Playground } from './pages/playground.js'
import { Run } from './pages/run.js'
import { Runs } from './pages/runs.js'
import { Server } from './pages/server.js'
import { SignIn } from './pages/sign-in.js'
import { Usage } from './pages/usage.js'
import { BASE, onLinkClick, type Route, useRoute } from './router.js'
import { forgetKey, savedKey, saveKey } from './session.js'

const NAV: { page: Route['page']; label: string; path: string; operatorsOnly?: boolean }[] = [
  { page: 'runs', label: 'Runs', path: `${BASE}/runs` },
  { page: 'checkpoints', label: 'Checkpoints', path: `${BASE}/checkpoints` },
  { page: 'playground', label: 'Playground', path: `${BASE}/playground` },
  { page: 'usage', label: 'Usage', path: `${BASE}/usage` },
  { page: 'server', label: 'Server', path: `${BASE}/server`, operatorsOnly: true },
]

function Page({ route, operator }: { route: Route; operator: boolean }) {
  switch (route.page) {
    case 'runs':
      return <Runs />
    case 'run':
      return <Run id={route.id} />
    case 'checkpoints':
      return <Checkpoints />
    case 'playground':
      return <Playground />
    case 'usage':
      return <Usage operator={operator} />
    case 'server':
      return operator ? <Server /> : <Missing />
    case 'missing':
      return <Missing />
  }
}

function Missing() {
  return (
    <>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>There is no such page in the console.</p>
    </>
  )
}

export function App() {
  const [key, setKey] = useState(savedKey)
  const [operator, setOperator] = useState(false)
  const route = useRoute()
  setApiKey(key)

  useEffect(() => {
    if (key === null) return
    api('/api/v1/admin/status').then(
      () => setOperator(true),
      () => setOperator(false),
    )
  }, [key])

  // Moving to another page moves the keyboard focus to its heading, as a page load would.
  useEffect(() => {
    document.querySelector<HTMLElement>('main h1')?.focus()
  }, [route])

  if (key === null) {
    return (
      <SignIn
        onSignedIn={(k) => {
          saveKey(k)
          setKey(k)
        }}
      />
    )
  }
  const current = route.page === 'run' ? 'runs' : route.page
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">TuFT console</span>
        <nav aria-label="Console">
          {NAV.filter((n) => operator || !n.operatorsOnly).map((n) => (
            <a
              key={n.page}
              href={n.path}
              onClick={onLinkClick}
              aria-current={current === n.page ? 'page' : undefined}
            >
              {n.label}
            </a>
          ))}
        </nav>
        <button
          type="button"
          class="sign-out"
          onClick={() => {
            forgetKey()
            setOperator(false)
            setKey(null)
          }}
        >
          Sign out
        </button>
      </header>
      <main id="main">
        <Page route={route} operator={operator} />
      </main>
    </>
  )
}
