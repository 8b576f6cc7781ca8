// Bundles the browser console (plugins/console/ui) with esbuild into plugins/console/build/: the page,
// one script and one stylesheet, every library inside (no CDN), so /console works offline.
// `npm ci` runs it (the install script) and so does `npm run build`.
import { copyFileSync, mkdirSync } from 'node:fs'
import { build } from 'esbuild'

const ROOT = new URL('..', import.meta.url).pathname
const UI = `${ROOT}plugins/console/ui/`
const OUT = `${ROOT}plugins/console/build/`

const started = Date.now()
mkdirSync(OUT, { recursive: true })
await build({
  entryPoints: { console: `${UI}main.tsx` },
  outdir: OUT,
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  logLevel: 'warning',
})
copyFileSync(`${UI}index.html`, `${OUT}index.html`)
console.log(`build-console: built ${OUT} in ${Date.now() - started} ms`)
