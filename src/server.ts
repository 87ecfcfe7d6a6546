import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from './app.ts'
import { ConfigError, loadConfig } from './config/load.ts'
import { packageVersion } from './metrics.ts'
import { OidcError } from './oidc/client.ts'
import { tracesEndpoint } from './span.ts'
import {
  describeFailure,
  describeRedisTarget,
  listenStarting,
  probeTcp,
  redisAddresses,
  retryUntilDeadline,
} from './startup.ts'

/**
 * The only place that reads the environment, listens and handles signals. Exits non-zero
 * with every configuration problem named, or with the reason the IdP or Redis is unusable
 * (after waiting `BFF_STARTUP_TIMEOUT_SECONDS` for one that is only unreachable).
 */
async function main(): Promise<void> {
  let config
  try {
    config = loadConfig(process.env, { readFile: (path) => readFileSync(path, 'utf8') })
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bffgate: ${err.message}\n`)
      process.exit(78) // EX_CONFIG
    }
    throw err
  }

  // OpenTelemetry only when the standard OTEL_* variables ask for it; the SDK is not even loaded otherwise.
  const tracing =
    tracesEndpoint(process.env) === undefined
      ? undefined
      : (await import('./tracing.ts')).startTracing(process.env, packageVersion(), {
          trustedProxies: config.trustedProxies,
        })

  // While the start waits for the IdP or Redis, the admin port already answers: alive, not ready.
  let adminPort = config.admin.port
  let starting: Server | undefined
  if (config.startupTimeoutSeconds > 0) {
    try {
      starting = await listenStarting(config.admin.host, config.admin.port)
      adminPort = (starting.address() as AddressInfo).port
    } catch (err) {
      process.stderr.write(
        `bffgate: cannot listen on ${config.admin.host}:${config.admin.port}: ${(err as Error).message} (BFF_ADMIN_PORT)\n`,
      )
      process.exit(1)
    }
  }
  const deadline = Date.now() + config.startupTimeoutSeconds * 1000
  const waitingFor = (what: string) => (err: unknown, delayMs: number) => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000))
    process.stderr.write(
      `bffgate: waiting for ${what}: ${(err as Error).message}; retrying in ${delayMs / 1000} s (giving up in ${left} s, BFF_STARTUP_TIMEOUT_SECONDS)\n`,
    )
  }

  let app
  try {
    app = await retryUntilDeadline(() => buildApp(config, tracing !== undefined ? { tracing } : {}), {
      deadline,
      // An outage may end; a wrong issuer or a refused client will not.
      isTransient: (err) => err instanceof OidcError && err.kind === 'transient',
      onRetry: waitingFor('the identity provider'),
    })
  } catch (err) {
    process.stderr.write(`bffgate: cannot start: ${(err as Error).message}\n`)
    process.exit(1)
  }
  const redisTarget = describeRedisTarget(config.redis)
  // ioredis says only "Reached the max retries"; a TCP probe of the configured addresses names the cause.
  const redisFailure = async (err: unknown) => {
    const unreachable = config.session.store === 'redis' ? await probeTcp(redisAddresses(config.redis)) : undefined
    return unreachable !== undefined ? `${unreachable} (${describeFailure(err)})` : describeFailure(err)
  }
  try {
    await retryUntilDeadline(
      async () => {
        try {
          await app.bff.store.ping()
        } catch (err) {
          throw new Error(await redisFailure(err), { cause: err })
        }
      },
      {
        deadline,
        isTransient: () => true,
        onRetry: waitingFor(`Redis at ${redisTarget}`),
      },
    )
  } catch (err) {
    process.stderr.write(`bffgate: cannot start: Redis at ${redisTarget} is unreachable: ${(err as Error).message}\n`)
    await app.close().catch(() => {})
    process.exit(1)
  }
  if (starting !== undefined)
    await new Promise<void>((resolve) => {
      starting.close(() => resolve())
      starting.closeAllConnections()
    })

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) {
      // A second signal during the drain: stop now. exit() (not the signal's default action)
      // lets the exit handlers run, so the access lines still held are written.
      app.log.warn(
        { event: 'server.stop_forced', signal },
        'second signal: stopping without waiting for in-flight requests',
      )
      process.exit(1)
    }
    closing = true
    app.log.info({ event: 'server.stopping', signal }, 'stopping: finishing in-flight requests')
    const force = setTimeout(() => {
      app.log.error({ event: 'server.stop_timeout' }, 'in-flight requests did not finish in time')
      process.exit(1)
    }, 25_000)
    force.unref()
    // close() stops listening and closes idle keep-alive connections once; a connection whose
    // request finishes during the drain becomes idle later and would hold the exit open until
    // its keep-alive timeout, so sweep idle connections until the server has closed.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 100)
    sweep.unref()
    app.close().then(
      async () => {
        await tracing?.shutdown().catch(() => {})
        process.exit(0)
      },
      (err: unknown) => {
        app.log.error({ event: 'server.stop_failed', err }, 'error while stopping')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  for (const [server, { host, port }, setting] of [
    [app, config, 'BFF_PORT'],
    [app.admin, { host: config.admin.host, port: adminPort }, 'BFF_ADMIN_PORT'],
  ] as const) {
    try {
      await server.listen({ port, host })
    } catch (err) {
      process.stderr.write(`bffgate: cannot listen on ${host}:${port}: ${(err as Error).message} (${setting})\n`)
      await app.close().catch(() => {})
      process.exit(1)
    }
  }
}

await main()
