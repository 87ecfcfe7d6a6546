import { readFileSync } from 'node:fs'
import { buildApp } from './app.ts'
import { ConfigError, loadConfig } from './config/load.ts'

/**
 * The only place that reads the environment, listens and handles signals. Exits non-zero
 * with every configuration problem named, or with the reason the IdP or Redis is unusable.
 */
async function main (): Promise<void> {
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

  let app
  try {
    app = await buildApp(config)
    await app.bff.store.ping()
  } catch (err) {
    process.stderr.write(`bffgate: cannot start: ${(err as Error).message}\n`)
    if (app !== undefined) await app.close().catch(() => {})
    process.exit(1)
  }

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
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
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ event: 'server.stop_failed', err }, 'error while stopping')
      process.exit(1)
    })
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))

  for (const [server, { host, port }, setting] of [[app, config, 'BFF_PORT'], [app.admin, config.admin, 'BFF_ADMIN_PORT']] as const) {
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
