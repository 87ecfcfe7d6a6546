import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

/** A real Redis for a test file. */
export interface TestRedis {
  readonly url: string
  /** Where it came from: `env`, `testcontainers` or `redis-server`. */
  readonly source: 'env' | 'testcontainers' | 'redis-server'
  /** A fresh key prefix, so tests sharing one Redis never see each other's keys. */
  prefix(): string
  /** A client on this Redis, closed by `stop()`. */
  client(): Redis
  stop(): Promise<void>
}

let prefixCounter = 0

/**
 * Finds a real Redis, in this order: `BFF_REDIS_URL`; a testcontainers container when a
 * container runtime is reachable; a `redis-server` binary on an ephemeral port. Fails loudly,
 * saying how to get one, when none is there: Redis-backed tests are never silently skipped.
 */
export async function startTestRedis(): Promise<TestRedis> {
  const clients: Redis[] = []
  const make = (url: string, source: TestRedis['source'], stopServer: () => Promise<void>): TestRedis => ({
    url,
    source,
    prefix: () => `test:${process.pid}:${++prefixCounter}:${Math.random().toString(36).slice(2, 8)}:`,
    client() {
      const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false })
      clients.push(client)
      return client
    },
    async stop() {
      await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())))
      await stopServer()
    },
  })

  const fromEnv = process.env.BFF_REDIS_URL
  if (fromEnv) return make(fromEnv, 'env', async () => {})

  if (containerRuntimeHint()) {
    try {
      const { RedisContainer } = await import('@testcontainers/redis')
      const container = await new RedisContainer('redis:7-alpine').start()
      return make(container.getConnectionUrl(), 'testcontainers', async () => {
        await container.stop()
      })
    } catch (err) {
      // In CI the engine is there on purpose: the user's chosen path must work, not fall back.
      if (process.env.CI === 'true')
        throw new Error(`testcontainers could not start Redis in CI: ${(err as Error).message}`, { cause: err })
      process.stderr.write(
        `testcontainers could not start Redis (${(err as Error).message.split('\n')[0]}); trying a redis-server binary\n`,
      )
    }
  }

  const server = await startRedisServer().catch((err: unknown) => {
    throw new Error(
      'No Redis for the tests: set BFF_REDIS_URL, make a container runtime reachable for testcontainers, ' +
        `or install redis-server (Debian: apt-get install redis-server). Cause: ${(err as Error).message}`,
    )
  })
  return make(server.url, 'redis-server', () => server.stop())
}

/** A container runtime socket or endpoint that testcontainers could use. */
function containerRuntimeHint(): boolean {
  if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_HOST_OVERRIDE) return true
  const candidates = [
    '/var/run/docker.sock',
    join(homedir(), '.docker/run/docker.sock'),
    join(homedir(), '.docker/desktop/docker.sock'),
    process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'docker.sock') : '',
    process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'podman/podman.sock') : '',
    '/run/podman/podman.sock',
  ]
  return candidates.some((path) => path !== '' && existsSync(path))
}

export interface RedisServerProcess {
  readonly url: string
  readonly port: number
  readonly pid: number
  /** Kills the server (SIGKILL: an outage, not a shutdown). */
  kill(): Promise<void>
  /** Starts it again on the same port. */
  restart(): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts `redis-server` on a free loopback port, without persistence; with `appendOnly`, with
 * an append-only file (fsync on every write) in a temporary directory of its own, so that
 * `restart()` after `kill()` brings back what it held, as a production Redis does.
 */
export async function startRedisServer(
  options: { binary?: string; appendOnly?: boolean } = {},
): Promise<RedisServerProcess> {
  const binary = options.binary ?? process.env.REDIS_SERVER_BIN ?? 'redis-server'
  const port = await freePort()
  let child: ChildProcess | undefined
  const dir = options.appendOnly === true ? await mkdtemp(join(tmpdir(), 'bff-redis-aof-')) : undefined
  const persistence =
    dir === undefined ? ['--appendonly', 'no'] : ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always']

  const launch = async () => {
    const proc = spawn(
      binary,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--protected-mode', 'yes'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    child = proc
    const spawnError = new Promise<never>((_, reject) => proc.once('error', reject))
    spawnError.catch(() => {})
    await Promise.race([spawnError, waitForRedis(port)])
  }
  await launch()

  const kill = async () => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGKILL')
    await exited
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? -1
    },
    kill,
    restart: launch,
    async stop() {
      await kill()
      if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Resolves once a Redis on this loopback port answers PING (10 s at most). */
export async function waitForRedis(port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const probe = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      probe.disconnect()
      return
    } catch {
      probe.disconnect()
      await sleep(50)
    }
  }
  throw new Error(`redis on port ${port} did not answer within 10 s`)
}

/**
 * Every key under `prefix` and every value they hold (hash fields, set members, strings), as
 * raw bytes: what an attacker with a dump of this Redis would have. The key names come first.
 */
export async function dumpRedis(
  client: Pick<Redis, 'keys' | 'type' | 'hgetallBuffer' | 'smembersBuffer' | 'getBuffer'>,
  prefix: string,
): Promise<{ keys: string[]; values: Buffer[] }> {
  const keys = await client.keys(`${prefix}*`)
  const values: Buffer[] = [Buffer.from(keys.join('\n'))]
  for (const key of keys) {
    const type = await client.type(key)
    if (type === 'hash') values.push(...Object.values(await client.hgetallBuffer(key)))
    else if (type === 'set') values.push(...(await client.smembersBuffer(key)))
    else values.push((await client.getBuffer(key)) ?? Buffer.alloc(0))
  }
  return { keys, values }
}

/** Every port {@link freePort} handed out in this process. */
const handedOut = new Set<number>()

/**
 * A port free on 127.0.0.1 now, never one this process was given before: the system may offer
 * a port again as soon as it is closed, and two calls in a row (a server's port and its admin
 * port) then got the same one.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer()
      server.unref()
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        const offered = typeof address === 'object' && address !== null ? address.port : 0
        server.close(() => resolve(offered))
      })
    })
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
}
