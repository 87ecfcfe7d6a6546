/**
 * The package as a user gets it: `npm pack` of this folder, installed from the tarball into a
 * fresh SPA project (its own package.json, nothing else; offline, as the package has no
 * dependencies), type-checked there with the repository's TypeScript, and imported by Node.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const packageDir = fileURLToPath(new URL('../', import.meta.url))
const tsc = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url))
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
  name: string
  version: string
  files: string[]
  exports: Record<string, unknown>
}

let work: string
let spa: string
let tarball: string
let packed: { files: Array<{ path: string }> }

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'bffgate-client-pack-'))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: packageDir })
  packed = (JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0]!
  tarball = join(work, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename)
  spa = join(work, 'spa')
  mkdirSync(join(spa, 'src'), { recursive: true })
  writeFileSync(
    join(spa, 'package.json'),
    JSON.stringify({ name: 'my-spa', version: '1.0.0', private: true, type: 'module' }, null, 2),
  )
  writeFileSync(
    join(spa, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'es2022',
          module: 'esnext',
          moduleResolution: 'bundler',
          lib: ['es2022', 'dom'],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: [],
        },
        include: ['src'],
      },
      null,
      2,
    ),
  )
  // The README's example, as an app would write it.
  writeFileSync(
    join(spa, 'src', 'main.ts'),
    `
import { BffUnauthenticatedError, createBffClient, type BffUser } from '@bffgate/client'

const bff = createBffClient({ onOtherTabLogout: ({ reason }) => console.log('logged out elsewhere:', reason) })
const user: BffUser | null = await bff.getUser()
if (user === null) bff.login('/orders')
else console.log(user.claims.sub, new Date(user.session.expiresAt * 1000))
try {
  const res = await bff.fetch('/api/orders', { method: 'POST', body: JSON.stringify({ item: 1 }) })
  const orders: unknown = await res.json()
  console.log(orders)
} catch (err) {
  if (!(err instanceof BffUnauthenticatedError)) throw err
  const code: 'login_required' | 'session_ended' = err.code
  console.log(code)
}
const logoutUrl: string = await bff.logout({ navigate: false })
console.log(logoutUrl)
`,
  )
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: spa })
})

after(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

test('npm pack ships what package.json lists, README and LICENSE, and every file its exports name', () => {
  const shipped = packed.files.map((f) => f.path).sort()
  assert.deepEqual(shipped, [...new Set([...manifest.files, 'package.json', 'README.md', 'LICENSE'])].sort())
  const targets = (value: unknown): string[] =>
    typeof value === 'string' ? [value] : Object.values(value as Record<string, unknown>).flatMap(targets)
  for (const target of targets(manifest.exports))
    assert.ok(shipped.includes(target.replace(/^\.\//, '')), `exports names ${target}, which the tarball lacks`)
  assert.equal(tarball.endsWith(`bffgate-client-${manifest.version}.tgz`), true)
})

test('installed from the tarball into a fresh SPA project, it type-checks there', async () => {
  const installed = JSON.parse(
    readFileSync(join(spa, 'node_modules', '@bffgate', 'client', 'package.json'), 'utf8'),
  ) as { name: string; version: string }
  assert.deepEqual([installed.name, installed.version], [manifest.name, manifest.version])
  const spaManifest = JSON.parse(readFileSync(join(spa, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>
  }
  assert.match(spaManifest.dependencies['@bffgate/client'] ?? '', /^file:.*\.tgz$/)
  const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: spa }).then(
    () => ({ code: 0, out: '' }),
    (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
  )
  assert.equal(result.code, 0, result.out)
})

test('the types are what the SPA is checked against: a wrong call fails to type-check', async () => {
  writeFileSync(
    join(spa, 'src', 'wrong.ts'),
    `
import { createBffClient } from '@bffgate/client'
const bff = createBffClient({ channelName: 42 })
bff.login(7)
`,
  )
  try {
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: spa }).then(
      () => ({ code: 0, out: '' }),
      (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
    )
    assert.notEqual(result.code, 0)
    assert.match(result.out, /wrong\.ts\(3,/)
    assert.match(result.out, /wrong\.ts\(4,/)
  } finally {
    rmSync(join(spa, 'src', 'wrong.ts'))
  }
})

test('Node imports the installed package by its name and finds every export', async () => {
  const { stdout } = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    const m = await import('@bffgate/client')
    console.log(JSON.stringify(Object.keys(m).sort()))`,
    ],
    { cwd: spa },
  )
  // Exactly what the package's source exports: nothing lost on the way through npm pack.
  const source = Object.keys(await import('../index.js')).sort()
  assert.ok(source.includes('createBffClient'))
  assert.deepEqual(JSON.parse(stdout), source)
})
