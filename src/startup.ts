import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import type { RedisConfig } from './config/types.ts'
import { describeNetworkCause } from './net-error.ts'

/**
 * The start's waiting: a pod scheduled before its IdP or Redis is ready retries with backoff
 * for `BFF_STARTUP_TIMEOUT_SECONDS` instead of exiting and crash-looping, and says what it
 * waits for and why.
 */

/** Delay before retry number `attempt` (1, 2 ...): 0.5 s doubling up to 5 s. */
export function backoffDelayMs(attempt: number): number {
  return Math.min(500 * 2 ** (attempt - 1), 5000)
}

export interface RetryOptions {
  /** When to stop retrying (epoch ms). */
  readonly deadline: number
  /** Whether a failure may go away by itself (an outage), or is final (a misconfiguration). */
  readonly isTransient: (err: unknown) => boolean
  /** Told each failure that will be retried, with the wait before the next attempt. */
  readonly onRetry: (err: unknown, delayMs: number) => void
  readonly now?: () => number
  readonly sleep?: (ms: number) => Promise<void>
}

/** Runs `attempt` until it succeeds, a failure is final, or the next try would pass the deadline. */
export async function retryUntilDeadline<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  for (let n = 1; ; n++) {
    try {
      return await attempt()
    } catch (err) {
      const delay = backoffDelayMs(n)
      if (!options.isTransient(err) || now() + delay > options.deadline) throw err
      options.onRetry(err, delay)
      await sleep(delay)
    }
  }
}

/**
 * Which Redis the configuration points at, by the variable that names it, without
 * credentials: `BFF_REDIS_URL (redis.internal:6379)`, `BFF_REDIS_SENTINELS (...)`.
 */
export function describeRedisTarget(redis: RedisConfig): string {
  if (redis.cluster !== undefined)
    return `"BFF_REDIS_CLUSTER_NODES" (${redis.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(', ')})`
  if (redis.sentinel !== undefined) {
    return `"BFF_REDIS_SENTINELS" (${redis.sentinel.nodes.map((n) => `${n.host}:${n.port}`).join(', ')}, master "${redis.sentinel.masterName}" from "BFF_REDIS_SENTINEL_MASTER_NAME")`
  }
  const url = new URL(redis.url)
  return `"BFF_REDIS_URL" (${url.protocol}//${url.host}${url.pathname.length > 1 ? url.pathname : ''})`
}

/** The addresses a Redis configuration connects to first (the server, the sentinels or the seeds). */
export function redisAddresses(redis: RedisConfig): Array<{ host: string; port: number }> {
  if (redis.cluster !== undefined) return [...redis.cluster.nodes]
  if (redis.sentinel !== undefined) return [...redis.sentinel.nodes]
  const url = new URL(redis.url)
  return [{ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port) }]
}

/**
 * Why none of these addresses takes a TCP connection (`ECONNREFUSED 127.0.0.1:6379`), or
 * undefined when one does. ioredis reports an unreachable server only as "Reached the max
 * retries per request limit"; this names the cause.
 */
export async function probeTcp(
  addresses: ReadonlyArray<{ host: string; port: number }>,
  timeoutMs = 1000,
): Promise<string | undefined> {
  const failures: string[] = []
  for (const { host, port } of addresses) {
    const failure = await new Promise<string | undefined>((resolve) => {
      const socket = connect({ host, port })
      const timer = setTimeout(() => {
        socket.destroy()
        resolve(`no answer from ${host}:${port} within ${timeoutMs} ms`)
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.destroy()
        resolve(undefined)
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        resolve(describeNetworkCause(err) ?? `${host}:${port}: ${err.message}`)
      })
    })
    if (failure === undefined) return undefined
    failures.push(failure)
  }
  return failures.join(', ')
}

/** The most telling reason in an error's cause chain: a system error, else the innermost message. */
export function describeFailure(err: unknown): string {
  const network = describeNetworkCause(err)
  let innermost = err
  for (let i = 0; i < 10 && innermost instanceof Error && innermost.cause instanceof Error; i++)
    innermost = innermost.cause
  const message = innermost instanceof Error ? innermost.message : String(innermost)
  if (network === undefined || message.includes(network)) return message
  return message === '' ? network : `${message} (${network})`
}

/**
 * The admin port while the start waits: `/healthz` 200 (the process is alive: no restart),
 * `/readyz` 503 (no traffic yet), everything else 404. Replaced by the real admin listener.
 */
export async function listenStarting(host: string, port: number): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    const [status, body] =
      path === '/healthz'
        ? [200, { status: 'ok' }]
        : path === '/readyz'
          ? [503, { status: 'starting' }]
          : [404, { error: 'not_found', message: 'Not found' }]
    response.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...(status === 503 && { 'retry-after': '2' }),
    })
    response.end(JSON.stringify(body))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
