// The dependency rules of the layout (README "How it is built"), read from the code's own imports:
// core/ is the ground floor and imports nothing outside it, no file imports itself back through a
// cycle, and nothing reads files from outside the repository (a fresh clone has no ../shared). Every
// TypeScript file of the repository is read; nothing is listed by hand.

import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import ts from 'typescript'

const ROOT = resolve(import.meta.dirname, '..')
const SKIP = new Set(['node_modules', 'build', 'dist', '.git', '.tuft'])

function sourceFiles(dir: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...sourceFiles(path))
    else if (/\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) found.push(path)
  }
  return found
}

/** Repository-relative path → the repository files it imports (static, re-exports and literal import()). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles(ROOT)) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
    const targets = importedFiles
      .map((f) => f.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => relative(ROOT, resolve(dirname(file), name)).replace(/\.js$/, '.ts'))
    graph.set(relative(ROOT, file), targets)
  }
  return graph
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next)
    low.set(v, next)
    next++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/** `file → target` for every import from core/ to a file outside it. */
function outwardFromCore(graph: Map<string, string[]>): string[] {
  return [...graph]
    .filter(([file]) => file.startsWith('core/'))
    .flatMap(([file, targets]) => targets.filter((t) => !t.startsWith('core/')).map((t) => `${file} → ${t}`))
}

describe('architecture', () => {
  const graph = importGraph()

  it('reads the whole tree', () => {
    assert.ok(graph.size > 100, `only ${graph.size} files found`)
    assert.ok(graph.has('core/engine.ts') && graph.has('plugins/app.ts'))
  })

  it('core/ imports nothing outside core/', () => {
    const outward = outwardFromCore(graph)
    assert.deepEqual(outward, [], `core reaches outside itself:\n${outward.join('\n')}`)
  })

  it('has no import cycles', () => {
    const found = cycles(graph)
    assert.deepEqual(found, [], `import cycles:\n${found.map((c) => c.join(' ↔ ')).join('\n')}`)
  })

  it('stands alone: no code or test reaches outside the repository for files (../shared)', () => {
    const outside = sourceFiles(ROOT)
      .filter((file) => /\.\.\/shared\b|['"`]\/work\//.test(readFileSync(file, 'utf8')))
      .map((file) => relative(ROOT, file))
      .filter((file) => file !== 'test/architecture.test.ts')
    assert.deepEqual(outside, [], `files outside the repository are read by:\n${outside.join('\n')}`)
  })

  it('would see a cycle and an outward import (the checks can fail)', () => {
    const planted = new Map([
      ['core/a.ts', ['core/b.ts']],
      ['core/b.ts', ['core/a.ts', 'plugins/x.ts']],
      ['plugins/x.ts', []],
    ])
    assert.deepEqual(cycles(planted), [['core/a.ts', 'core/b.ts']])
    assert.deepEqual(outwardFromCore(planted), ['core/b.ts → plugins/x.ts'])
  })
})
