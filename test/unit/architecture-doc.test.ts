import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { test } from 'node:test'

const root = new URL('../../', import.meta.url)
const doc = readFileSync(new URL('docs/architecture.md', root), 'utf8')
/** Every repository path the document names in backticks (`src/...`, `docs/...`, `test/...`). */
const PATH = /`((?:src|test|docs|bench|dev|scripts)\/[^`\s]*)`/g

test('docs/architecture.md names only paths that exist', () => {
  const named = [...new Set([...doc.matchAll(PATH)].map((m) => m[1]!))]
  assert.ok(named.length >= 30, `the document names ${named.length} paths: is the pattern still right?`)
  const missing = named.filter((path) => !existsSync(new URL(path, root)))
  assert.deepEqual(missing, [], 'moved or removed: update docs/architecture.md')
})

test('docs/architecture.md names only functions that exist in the file it names them with', () => {
  // `src/x.ts` `name`: the function the path walk points at.
  const pairs = [...doc.matchAll(/`(src\/[^`\s]+\.ts)` `([A-Za-z]\w*)`/g)].map((m) => [m[1]!, m[2]!] as const)
  assert.ok(pairs.length >= 5, `the document names ${pairs.length} functions`)
  const missing = pairs.filter(
    ([path, name]) =>
      !existsSync(new URL(path, root)) || !new RegExp(`\\b${name}\\b`).test(readFileSync(new URL(path, root), 'utf8')),
  )
  assert.deepEqual(missing, [], 'renamed or moved: update docs/architecture.md')
})

test("the README's layout lists every folder of src/, and only folders and files that exist", async () => {
  const { readdirSync } = await import('node:fs')
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  const layout = /## Layout\n+```\n([\s\S]*?)```/.exec(readme)?.[1]
  assert.ok(layout !== undefined, 'the README has a Layout block')
  const listed = new Set([...layout.matchAll(/^(src\/[\w.-]+)/gm)].map((m) => m[1]!))
  const missing = [...listed].filter((path) => !existsSync(new URL(path, root)))
  assert.deepEqual(missing, [], "moved or removed: update the README's layout")
  const folders = readdirSync(new URL('src/', root), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `src/${e.name}`)
  assert.deepEqual(
    folders.filter((folder) => !listed.has(folder)),
    [],
    "a folder of src/ the README's layout does not list",
  )
})
