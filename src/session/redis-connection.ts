import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisConfig } from '../config/types.ts'

/** A connection to any of the three topologies; the backend tells a Cluster apart with `instanceof Cluster`. */
export type RedisConnection = Redis | Cluster

/**
 * Connects to the Redis the configuration names: a standalone server (`url`), the master
 * behind Sentinels (`sentinel`), or a Cluster (`cluster`). Every topology fails fast while
 * Redis is away (one retry per command, no endless offline queue), so a request gets a 503
 * instead of hanging, and reconnects by itself.
 */
export function createRedisConnection(config: RedisConfig): RedisConnection {
  const url = new URL(config.url)
  const tls = url.protocol === 'rediss:' ? { servername: url.hostname } : undefined
  const username = config.username ?? (url.username !== '' ? decodeURIComponent(url.username) : undefined)
  const password = config.password ?? (url.password !== '' ? decodeURIComponent(url.password) : undefined)
  const credentials: RedisOptions = {
    ...(username !== undefined && { username }),
    ...(password !== undefined && { password }),
  }
  const failFast: RedisOptions = {
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    // A Redis that stops answering on an open connection (frozen, partitioned) sends no error;
    // without a deadline every request would hang on it instead of getting its 503.
    commandTimeout: 2000,
    enableReadyCheck: true,
  }
  const retryStrategy = (attempt: number) => Math.min(attempt * 200, 2000)

  if (config.cluster !== undefined) {
    const options: ClusterOptions = {
      clusterRetryStrategy: retryStrategy,
      // Commands issued while the slot map is being rebuilt wait for it rather than fail.
      enableOfflineQueue: true,
      maxRedirections: 16,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      slotsRefreshTimeout: 2000,
      redisOptions: {
        ...failFast,
        ...credentials,
        // With TLS the certificate names the host, not the address the cluster announces.
        ...(tls !== undefined && { tls: { ...tls, servername: undefined } }),
      },
    }
    return new Cluster(
      config.cluster.nodes.map((n) => ({ host: n.host, port: n.port })),
      options,
    )
  }

  const database = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
  if (config.sentinel !== undefined) {
    return new Redis({
      ...failFast,
      ...credentials,
      db: database,
      sentinels: config.sentinel.nodes.map((n) => ({ host: n.host, port: n.port })),
      name: config.sentinel.masterName,
      ...(config.sentinel.password !== undefined && { sentinelPassword: config.sentinel.password }),
      ...(tls !== undefined && { tls: {}, enableTLSForSentinelMode: true, sentinelTLS: {} }),
      retryStrategy,
      sentinelRetryStrategy: retryStrategy,
      // After a failover the old master may still accept a connection as a replica: reconnect
      // (to whatever the sentinels now name) when a write meets READONLY.
      reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
    })
  }

  return new Redis({
    ...failFast,
    ...credentials,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? 6379 : Number(url.port),
    db: database,
    ...(tls !== undefined && { tls }),
    retryStrategy,
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  })
}

/** The part of a pino logger the connection watcher uses. */
export interface ConnectionLog {
  error(details: object, message: string): void
  info(details: object, message: string): void
}

/**
 * Logs a Redis outage once when it starts (`redis.unavailable`) and once when the connection
 * is ready again (`redis.recovered`), rather than every reconnect attempt; the listener also
 * keeps ioredis from printing "Unhandled error event" to stderr.
 */
export function watchRedisConnection(connection: RedisConnection, log: ConnectionLog): void {
  let healthy = true
  connection.on('error', (err: Error) => {
    if (!healthy) return
    healthy = false
    log.error({ event: 'redis.unavailable', err }, 'Redis connection lost; retrying')
  })
  connection.on('ready', () => {
    if (healthy) return
    healthy = true
    log.info({ event: 'redis.recovered' }, 'Redis connection ready again')
  })
}
