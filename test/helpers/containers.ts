/**
 * The container engine the container tests use: Docker, or podman behind its
 * Docker-compatible API (scripts/containers/engine.sh sets one up on Debian). Reached at
 * `DOCKER_HOST` (unix sockets) or a default socket, spoken to over its HTTP API.
 *
 * Without an engine the container tests are skipped, saying why, except in CI (`CI=true`),
 * where a missing engine fails them: CI must run the container path.
 */
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { runAsync, type RunResult } from '../../scripts/deploy/tools.ts'

export interface Engine {
  /** The unix socket of the API. */
  socket: string
  /** `DOCKER_HOST` for the tools (docker-compose) the tests run. */
  dockerHost: string
  /** podman runs health checks only when asked (no systemd timers here): see {@link driveHealthchecks}. */
  podman: boolean
  /** `Docker` or `Podman Engine`, and its version. */
  name: string
  get<T = unknown>(path: string): Promise<T>
  post<T = unknown>(path: string, body?: unknown): Promise<{ status: number; body: T }>
  delete(path: string): Promise<number>
}

function candidates(): string[] {
  const host = process.env.DOCKER_HOST
  if (host !== undefined && host !== '') return host.startsWith('unix://') ? [host.slice('unix://'.length)] : []
  const runtime = process.env.XDG_RUNTIME_DIR
  return [
    '/var/run/docker.sock',
    join(homedir(), '.docker/run/docker.sock'),
    join(homedir(), '.docker/desktop/docker.sock'),
    ...(runtime ? [join(runtime, 'docker.sock'), join(runtime, 'podman/podman.sock')] : []),
    '/run/podman/podman.sock',
  ]
}

async function connect(socket: string): Promise<Engine | undefined> {
  const dispatcher = new Agent({ connect: { socketPath: socket } })
  const call = async (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => {
    const res = await request(`http://engine${path}`, {
      method,
      dispatcher,
      ...(body !== undefined && { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    })
    const text = await res.body.text()
    return { status: res.statusCode, body: text === '' ? undefined : (JSON.parse(text) as unknown) }
  }
  try {
    const version = await call('GET', '/version')
    const components = (version.body as { Components?: Array<{ Name: string; Version: string }> }).Components ?? []
    const podman = components.some((c) => c.Name === 'Podman Engine')
    const engine = components[0]
    return {
      socket,
      dockerHost: `unix://${socket}`,
      podman,
      name: engine === undefined ? 'unknown engine' : `${engine.Name} ${engine.Version}`,
      async get<T>(path: string) {
        const res = await call('GET', path)
        if (res.status >= 400) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(res.body)}`)
        return res.body as T
      },
      async post<T>(path: string, body?: unknown) {
        return call('POST', path, body) as Promise<{ status: number; body: T }>
      },
      async delete(path: string) {
        return (await call('DELETE', path)).status
      },
    }
  } catch {
    return undefined
  }
}

let found: Promise<Engine | undefined> | undefined

/** The reachable engine, or undefined. */
export function findEngine(): Promise<Engine | undefined> {
  found ??= (async () => {
    for (const socket of candidates()) {
      if (!existsSync(socket)) continue
      const engine = await connect(socket)
      if (engine !== undefined) return engine
    }
    return undefined
  })()
  return found
}

/**
 * `false` when an engine is reachable or this is CI (where the test then fails on the missing
 * engine); otherwise the reason to skip.
 */
export async function skipWithoutEngine(): Promise<false | string> {
  if ((await findEngine()) !== undefined || process.env.CI === 'true') return false
  return 'no container engine reachable (set DOCKER_HOST, or see docs/deploy.md "Run for real"); CI runs these'
}

/** The engine, or a failure that says how to get one. */
export async function requireEngine(): Promise<Engine> {
  const engine = await findEngine()
  if (engine === undefined) {
    throw new Error(
      `No container engine reachable at ${candidates().join(', ') || process.env.DOCKER_HOST}: CI must run the container tests. ` +
        'On Debian: scripts/containers/engine.sh install && scripts/containers/engine.sh start && scripts/containers/engine.sh base-images, ' +
        'then DOCKER_HOST=unix:///run/podman/podman.sock (.ci/run does this).',
    )
  }
  return engine
}

export interface ContainerSummary {
  Id: string
  Names: string[]
  State: string
  Status: string
  Labels: Record<string, string>
}

/** The project's containers (docker-compose labels them), running or not. */
export function projectContainers(engine: Engine, project: string): Promise<ContainerSummary[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }))
  return engine.get<ContainerSummary[]>(`/containers/json?all=1&filters=${filters}`)
}

/** A container's health: `starting`, `healthy`, `unhealthy`, or undefined without a health check. */
export async function health(engine: Engine, id: string): Promise<string | undefined> {
  const inspect = await engine.get<{ State: { Health?: { Status: string }; Healthcheck?: { Status: string } } }>(
    `/containers/${id}/json`,
  )
  const status = (inspect.State.Health ?? inspect.State.Healthcheck)?.Status
  return status === '' ? undefined : status
}

/**
 * Runs a container's own health check once and answers its health: through podman's API
 * (podman runs none by itself without systemd), or, on Docker, as Docker last recorded it.
 */
export async function runHealthcheck(engine: Engine, id: string): Promise<string | undefined> {
  if (!engine.podman) return health(engine, id)
  return (await engine.get<{ Status: string }>(`/v4.0.0/libpod/containers/${id}/healthcheck`)).Status
}

/**
 * podman 4 schedules health checks with systemd timers; without systemd they never run and
 * `depends_on: condition: service_healthy` waits forever. This runs them every `everyMs` for
 * the project's running containers through podman's API, as the timers would. Docker runs its
 * own: nothing to do there. Returns the function that stops it.
 */
export function driveHealthchecks(engine: Engine, project: string, everyMs = 2000): () => void {
  if (!engine.podman) return () => {}
  const state = { stopped: false }
  const loop = async () => {
    while (!state.stopped) {
      const containers = await projectContainers(engine, project).catch(() => [])
      await Promise.all(
        containers
          .filter((c) => c.State === 'running')
          .map(async (c) => {
            if ((await health(engine, c.Id).catch(() => undefined)) !== undefined)
              await engine.get(`/v4.0.0/libpod/containers/${c.Id}/healthcheck`).catch(() => {})
          }),
      )
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  }
  void loop()
  return () => {
    state.stopped = true
  }
}

/** docker-compose (v1, or `docker compose`) against this engine. */
export function compose(
  engine: Engine,
  command: string[],
  project: string,
  file: string,
  args: string[],
  timeoutMs = 600_000,
): Promise<RunResult> {
  const [bin, ...pre] = command
  return runAsync(bin!, [...pre, '-p', project, '-f', file, ...args], {
    env: { ...process.env, DOCKER_HOST: engine.dockerHost, COMPOSE_HTTP_TIMEOUT: String(Math.ceil(timeoutMs / 1000)) },
  })
}

/** Output of a command run in a container: exit code, stdout and stderr (from docker-compose exec). */
export async function execIn(
  engine: Engine,
  command: string[],
  project: string,
  file: string,
  service: string,
  argv: string[],
): Promise<RunResult> {
  return compose(engine, command, project, file, ['exec', '-T', service, ...argv])
}
