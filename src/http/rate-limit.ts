import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import { BffError } from '../errors.ts'
import { loginErrorLocation } from '../login/error-location.ts'
import { isNavigation } from '../spa/policy.ts'
import { createRedisConnection } from '../session/redis-connection.ts'
import { sendError } from './error-handler.ts'

interface LimitResult {
  readonly isAllowed: boolean
  readonly isExceeded?: boolean
  readonly ttl?: number
}
type Limiter = (request: FastifyRequest) => Promise<LimitResult>

declare module 'fastify' {
  interface FastifyInstance {
    /** From @fastify/rate-limit: a limiter to call by hand. */
    createRateLimit(options: object): Limiter
  }
}

/**
 * Per-client-IP rate limits on the public endpoints an attacker can hit without a session:
 * `/bff/login` (each starts a login transaction and a redirect to the IdP), `/bff/callback`
 * (each may redeem a code at the IdP), and the IdP's back channels `/bff/backchannel-logout`,
 * `/bff/global-token-revocation` and `/bff/ssf/events` (each verifies a JWT and may fetch the
 * caller's keys). Counted in Redis with the Redis store, so the limit holds
 * across replicas; in process with the memory store. Keyed by `request.ip`, so it is as
 * honest as the client address behind the configured trusted proxies.
 *
 * Checked in an `onRequest` hook of the app, before any body is read or route handler (or
 * route-scoped error handler) runs; the route files stay unaware. A Redis that fails does
 * not turn the limits into an outage: the request goes through.
 */
export async function registerRateLimits(app: FastifyInstance, config: Config): Promise<void> {
  const { windowSeconds, login, callback, backchannelLogout, revocation } = config.rateLimits
  // Each frontend's own endpoints sit under its path prefix; the back channels of the IdP and of
  // a Shared Signals transmitter are deployment-wide (the back-channel logout also under each prefix).
  const perFrontend = (
    [
      ['/bff/login', login],
      ['/bff/callback', callback],
      ['/bff/backchannel-logout', backchannelLogout],
    ] as const
  ).filter(([, max]) => max > 0)
  const deploymentWide = (
    [
      ['/bff/backchannel-logout', backchannelLogout],
      ['/bff/global-token-revocation', revocation],
      ['/bff/ssf/events', revocation],
    ] as const
  ).filter(([, max]) => max > 0)
  if (perFrontend.length === 0 && deploymentWide.length === 0) return

  let redis
  if (config.session.store === 'redis') {
    // A connection of its own: the session store's is private to it.
    redis = createRedisConnection(config.redis)
    redis.on('error', () => {}) // the session store's watcher logs Redis outages
    app.addHook('onClose', async () => {
      redis!.disconnect()
    })
  }
  await app.register(rateLimit, {
    global: false,
    ...(redis !== undefined && { redis, nameSpace: `${config.redis.keyPrefix}ratelimit:` }),
    skipOnError: true,
  })
  const limiterFor = (route: string, max: number) =>
    [
      route,
      app.createRateLimit({
        max,
        timeWindow: windowSeconds * 1000,
        // One bucket per frontend, endpoint and client address: frontends on different hosts
        // may serve the same path, and each has its own allowance.
        keyGenerator: (request: FastifyRequest) =>
          `${request.routeOptions.config.frontend ?? ''}:${route}:${request.ip}`,
      }),
    ] as const
  // Each frontend's endpoints (under its path prefix); then the deployment-wide ones at their
  // plain paths (a frontend without a prefix already has them).
  const limiters = new Map<string, Limiter>(
    config.frontends.flatMap((frontend) =>
      perFrontend.map(([endpoint, max]) => limiterFor(`${frontend.pathPrefix}${endpoint}`, max)),
    ),
  )
  for (const [endpoint, max] of deploymentWide) if (!limiters.has(endpoint)) limiters.set(...limiterFor(endpoint, max))
  // The login error page of the frontend a route belongs to (its route config names it, as for
  // the metrics), not of whichever frontend shares the route's path.
  const errorPathOf = new Map(config.frontends.map((frontend) => [frontend.name, frontend.login.errorPath]))

  // Behind a load balancer that nobody named in BFF_TRUSTED_PROXIES, request.ip is the
  // balancer's, and every client shares one allowance: say so once, on the first sign of it.
  let proxyUnnamed = config.trustedProxies.length === 0
  app.addHook('onRequest', (request, reply, done) => {
    const limiter = limiters.get(request.routeOptions.url ?? '')
    if (limiter === undefined) return done()
    if (proxyUnnamed && request.headers['x-forwarded-for'] !== undefined) {
      proxyUnnamed = false
      request.log.warn(
        { event: 'rate_limit.proxy_not_trusted' },
        "requests arrive through a proxy (X-Forwarded-For) while BFF_TRUSTED_PROXIES is empty: the rate limits see the proxy's address, so all clients behind it share one allowance; name the proxy in BFF_TRUSTED_PROXIES",
      )
    }
    limiter(request).then((result) => {
      if (result.isAllowed || result.isExceeded !== true) return done()
      const route = request.routeOptions.url!
      app.bff.metrics.rateLimited(route)
      // Counted in bff_rate_limited_total; a line per refused request would multiply a flood's log volume.
      request.log.debug({ event: 'rate_limit.exceeded', route }, 'rate limit exceeded')
      const error = new BffError('BFF_ERR_RATE_LIMITED', {
        retryAfter: Math.max(1, Math.ceil((result.ttl ?? 1000) / 1000)),
      })
      // A browser navigating to the login lands on the SPA's login error page, as for any other
      // login failure (login/error-page.ts); the IdP's back channel and fetch callers get JSON.
      if ((route.endsWith('/bff/login') || route.endsWith('/bff/callback')) && isNavigation(request.headers)) {
        reply
          .header('retry-after', String(error.retryAfter))
          .header('cache-control', 'no-store')
          .redirect(
            loginErrorLocation(
              errorPathOf.get(request.routeOptions.config.frontend ?? '') ?? config.login.errorPath,
              error.error,
              undefined,
            ),
            303,
          )
        return
      }
      sendError(reply, error)
    }, done)
  })
}
