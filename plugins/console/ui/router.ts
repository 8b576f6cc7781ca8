// Paths under /console, kept in the address bar (history API) so that pages can be bookmarked and
// shared; the server answers every /console path with the same page (plugins/console/index.ts).

import { useEffect, useState } from 'preact/hooks'

export const BASE = '/console'

export type Route =
  | { page: 'runs' }
  | { page: 'run'; id: string }
  | { page: 'checkpoints' }
  | { page: 'playground' }
  | { page: 'usage' }
  | { page: 'server' }
  | { page: 'missing' }

export function parse(pathname: string): Route {
  const rest = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname
  const parts = rest.split('/').filter((p) => p !== '')
  const [first, second] = parts
  if (first === undefined || (first === 'runs' && second === undefined)) return { page: 'runs' }
  if (first === 'runs' && second !== undefined && parts.length === 2)
    return { page: 'run', id: decodeURIComponent(second) }
  if (
    parts.length === 1 &&
    (first === 'checkpoints' || first === 'playground' || first === 'usage' || first === 'server')
  )
    return { page: first }
  return { page: 'missing' }
}

export const runPath = (id: string) => `${BASE}/runs/${encodeURIComponent(id)}`

export function navigate(path: string): void {
  history.pushState(null, '', path)
  dispatchEvent(new PopStateEvent('popstate'))
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.pathname))
  useEffect(() => {
    const update = () => setRoute(parse(location.pathname))
    addEventListener('popstate', update)
    return () => removeEventListener('popstate', update)
  }, [])
  return route
}

/** Follows an in-console link without reloading the page (modifier keys keep the browser's own behaviour). */
export function onLinkClick(event: MouseEvent): void {
  const a = event.currentTarget as HTMLAnchorElement
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
  event.preventDefault()
  navigate(a.pathname)
}
