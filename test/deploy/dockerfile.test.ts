/**
 * The Dockerfile and .dockerignore, checked without a Docker engine: the stages are read as
 * Docker reads them, and the build, runtime and dev stages are rehearsed in temporary folders
 * with the build context .dockerignore lets through (`npm install` stands in as a link to the
 * repository's node_modules).
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { settings, type SettingSpec } from '../../src/config/schema.ts'
import {
  buildContextFiles,
  isIgnored,
  listFiles,
  parseCopy,
  parseDockerignore,
  readDockerfile,
  rehearseStage,
  runCommand,
  stage,
  stageChain,
  words,
  type Instruction,
  type Stage,
} from '../../scripts/deploy/dockerfile.ts'
import { repoRoot, run } from '../../scripts/deploy/tools.ts'

const dockerfile = readDockerfile(repoRoot)
const ignore = parseDockerignore(readFileSync(join(repoRoot, '.dockerignore'), 'utf8'))
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string
  license: string
  scripts: Record<string, string>
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}
const nodeModules = join(repoRoot, 'node_modules')

function instructions(s: Stage, keyword: string): Instruction[] {
  return s.instructions.filter((i) => i.keyword === keyword)
}

function last(s: Stage, keyword: string): Instruction | undefined {
  return instructions(s, keyword).at(-1)
}

/** Instructions of a stage and of the stages it starts from. */
function inherited(name: string, keyword: string): Instruction[] {
  return stageChain(dockerfile, name).flatMap((s) => instructions(s, keyword))
}

/** `KEY=value` pairs of LABEL or ENV instructions (quoted values unquoted). */
function pairs(list: Instruction[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const i of list) {
    for (const m of i.args.matchAll(/([\w.-]+)=("((?:[^"\\]|\\.)*)"|\S+)/g)) out[m[1]!] = m[3] ?? m[2]!
  }
  return out
}

let work: string
let contextFiles: string[]
const stageDirs = new Map<string, string>()
let buildError: Error | undefined

before(() => {
  work = mkdtempSync(join(tmpdir(), 'bffgate-docker-'))
  contextFiles = buildContextFiles(repoRoot, ignore)
  const options = { contextDir: repoRoot, contextFiles, nodeModules, stageDirs }
  try {
    for (const name of ['build', 'runtime', 'dev']) {
      const dir = join(work, name)
      rehearseStage(dockerfile, name, dir, options)
      stageDirs.set(name, dir)
    }
  } catch (err) {
    buildError = err as Error
  }
})

after(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

test('the Dockerfile builds with BuildKit from Node 24 in deps, build, dev and runtime stages, the runtime last so it is the default target', () => {
  assert.equal(dockerfile.directives.syntax, 'docker/dockerfile:1')
  const names = dockerfile.stages.map((s) => s.name)
  for (const name of ['deps', 'build', 'dev', 'runtime'])
    assert.ok(names.includes(name), `no stage ${name} in ${names.join(', ')}`)
  assert.equal(names.at(-1), 'runtime')
  const external = dockerfile.stages.filter((s) => !names.includes(s.base)).map((s) => s.base)
  assert.ok(external.length > 0)
  for (const image of external) assert.match(image, /^node:24[.-]/, `${image} is not a Node 24 image`)
})

test('the runtime stage runs node directly as an unprivileged user, in production mode, with a health check on /healthz', () => {
  const runtime = stage(dockerfile, 'runtime')
  const user = last(runtime, 'USER')?.args
  assert.ok(user !== undefined, 'the runtime stage sets no USER: it would run as root')
  assert.match(user, /^[1-9][0-9]*(:[0-9]+)?$/, 'USER must be numeric so Kubernetes can verify runAsNonRoot')
  assert.equal(last(runtime, 'ENTRYPOINT'), undefined)
  const cmd = last(runtime, 'CMD')
  assert.ok(cmd !== undefined && cmd.args.startsWith('['), 'CMD must be the exec form, so that signals reach node')
  assert.deepEqual(
    words(cmd.args),
    ['node', ...pkg.scripts.start!.split(' ').slice(1)],
    'CMD must run what `npm start` runs, without npm',
  )
  assert.equal(pairs(inherited('runtime', 'ENV')).NODE_ENV, 'production')
  const healthcheck = last(runtime, 'HEALTHCHECK')?.args ?? ''
  assert.match(healthcheck, /CMD \[/, 'HEALTHCHECK must use the exec form (the image needs no shell tools)')
  assert.match(healthcheck, /\/healthz/)
  const ports = ['BFF_PORT', 'BFF_ADMIN_PORT']
    .map((name) => (settings as readonly SettingSpec[]).find((s) => s.name === name)?.default)
    .join(' ')
  assert.equal(last(runtime, 'EXPOSE')?.args, ports, 'EXPOSE must be the defaults of BFF_PORT and BFF_ADMIN_PORT')
  assert.equal(last(runtime, 'STOPSIGNAL')?.args ?? 'SIGTERM', 'SIGTERM')
})

test('the runtime image carries OCI labels that agree with package.json', () => {
  const runtime = stage(dockerfile, 'runtime')
  const labels = pairs(instructions(runtime, 'LABEL'))
  for (const key of ['title', 'description', 'licenses', 'source', 'version', 'revision']) {
    assert.ok(labels[`org.opencontainers.image.${key}`], `no org.opencontainers.image.${key} label`)
  }
  assert.equal(labels['org.opencontainers.image.licenses'], pkg.license)
  const versionArg = instructions(runtime, 'ARG')
    .map((i) => i.args)
    .find((a) => a.startsWith('VERSION='))
  assert.equal(versionArg, `VERSION=${pkg.version}`)
})

test('only production dependencies reach the runtime image', () => {
  const install = inherited('deps', 'RUN')
    .map(runCommand)
    .find((c) => /^npm (ci|install)\b/.test(c))
  assert.ok(install !== undefined, 'the deps stage installs nothing')
  assert.match(install, /--omit=dev\b/)
  const copies = instructions(stage(dockerfile, 'runtime'), 'COPY').map(parseCopy)
  const modules = copies.find((c) => c.dest.replace(/\/$/, '').endsWith('node_modules'))
  assert.equal(modules?.from, 'deps', 'node_modules must come from the deps stage')
  for (const copy of copies) {
    if (copy.from !== undefined) assert.ok(['deps', 'build'].includes(copy.from), `runtime copies from ${copy.from}`)
    else
      for (const source of copy.sources)
        assert.ok(!['src', 'dev', 'test'].includes(source), `runtime copies ${source} from the context`)
  }
})

test('the stages that run npm install get package.json, the lock file and every npm workspace (none today)', () => {
  const workspaces = (pkg as { workspaces?: string[] }).workspaces ?? []
  for (const name of ['deps', 'build-deps']) {
    const copied = inherited(name, 'COPY').flatMap((i) => parseCopy(i).sources)
    assert.ok(
      copied.includes('package.json') && copied.includes('package-lock.json'),
      `${name} installs without package.json and package-lock.json`,
    )
    for (const workspace of workspaces) {
      const folder = workspace.replace(/\/\*.*$/, '')
      assert.ok(
        copied.some((source) => source === folder || source.startsWith(`${folder}/`)),
        `${name} runs npm install without workspace ${workspace}`,
      )
    }
  }
})

test('.dockerignore keeps .git, node_modules, dist, tests, charts, docs and env files out of the build context', () => {
  for (const path of [
    '.git/config',
    'node_modules/fastify/package.json',
    'dist/src/server.js',
    'test/unit/docs.test.ts',
    'charts/bffgate/values.yaml',
    'docs/deploy.md',
    '.env',
    'src/.env.local',
    'dev/node_modules/x.js',
    '.ci/run',
    'docker-compose.yml',
  ]) {
    assert.ok(isIgnored(ignore, path), `${path} would reach the build context`)
  }
  for (const path of [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'src/server.ts',
    'dev/idp/main.ts',
  ]) {
    assert.ok(!isIgnored(ignore, path), `${path} would be missing from the build context`)
  }
  assert.ok(contextFiles.includes('src/server.ts'))
  assert.ok(!contextFiles.some((f) => f.startsWith('node_modules/') || f.startsWith('.git/') || f.startsWith('test/')))
})

test('the build stage, given only the build context, emits the same files as `npm run build`', () => {
  assert.ifError(buildError)
  assert.equal(pkg.scripts.build, 'tsc -p tsconfig.build.json')
  const shown = run(join(nodeModules, '.bin', 'tsc'), ['-p', 'tsconfig.build.json', '--showConfig'])
  assert.equal(shown.status, 0, shown.stderr)
  const config = JSON.parse(shown.stdout) as {
    compilerOptions: { outDir: string; sourceMap?: boolean }
    files: string[]
  }
  assert.equal(config.compilerOptions.outDir, './dist')
  const expected = config.files
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .flatMap((f) => {
      const js = f.replace(/^\.\//, '').replace(/\.ts$/, '.js')
      return config.compilerOptions.sourceMap === true ? [js, `${js}.map`] : [js]
    })
    .sort()
  assert.ok(expected.includes('src/server.js'))
  assert.deepEqual(listFiles(join(stageDirs.get('build')!, 'dist')), expected)
})

test("the runtime stage's files start bffgate, which names its missing settings and exits 78", () => {
  assert.ifError(buildError)
  const runtime = stageDirs.get('runtime')!
  assert.deepEqual(
    JSON.parse(readFileSync(join(runtime, 'package.json'), 'utf8')),
    pkg,
    'package.json ("type": "module") must be in the image',
  )
  const entry = words(last(stage(dockerfile, 'runtime'), 'CMD')!.args).slice(1)
  const result = spawnSync(process.execPath, entry, {
    cwd: runtime,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(result.status, 78, result.stderr)
  assert.match(result.stderr, /invalid configuration/)
  assert.match(result.stderr, /BFF_PUBLIC_URL/)
})

test('the compiled code imports nothing but Node built-ins and production dependencies', () => {
  assert.ifError(buildError)
  const dist = join(stageDirs.get('build')!, 'dist')
  const imported = new Set<string>()
  for (const file of listFiles(dist).filter((f) => f.endsWith('.js'))) {
    const code = readFileSync(join(dist, file), 'utf8')
    for (const m of code.matchAll(
      /(?:^|\s)(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm,
    )) {
      const specifier = (m[1] ?? m[2] ?? m[3])!
      if (specifier.startsWith('.') || specifier.startsWith('node:') || builtinModules.includes(specifier)) continue
      imported.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!)
    }
  }
  assert.ok(imported.has('fastify'), `found imports: ${[...imported].join(', ')}`)
  for (const name of imported)
    assert.ok(name in pkg.dependencies, `${name} is imported by the runtime code but is not a production dependency`)
})

test('the dev stage holds everything the development IdP and demo API import', () => {
  assert.ifError(buildError)
  const dev = stageDirs.get('dev')!
  const script = 'await import("./dev/idp/index.ts"); await import("./dev/api/index.ts")'
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: dev,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(result.status, 0, `${script}\n${result.stderr}`)
  const cmd = words(last(stage(dockerfile, 'dev'), 'CMD')!.args)
  assert.equal(cmd[0], 'node')
  assert.ok(existsSync(join(dev, cmd[1]!)), `${cmd[1]} is not in the dev stage`)
  assert.notEqual(last(stage(dockerfile, 'dev'), 'USER'), undefined, 'the dev image must not run as root either')
})
