import proxyAddr from '@fastify/proxy-addr'
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { FrontendConfig } from '../config/types.ts'
import { selectFrontend } from './select.ts'

/**
 * Where a request's frontend is resolved (docs/frontends.md): once, while fastify routes it.
 * With several frontends, every route of a frontend carries the routing constraint
 * `frontend: <name>` ({@link constrainToFrontend}), and the constraint's value for a request is
 * {@link selectFrontend} of its host and path; routes without the constraint (`/healthz`, the
 * revocation endpoints) answer every host. A request no frontend answers matches none of the
 * frontends' routes: the not-found handler answers it (`frontend_unknown`). With one frontend
 * without a path prefix, nothing here runs: routing is as it always was.
 */

/** The routing constraint's name; a route's `config.frontend` names its frontend too (metrics, logs). */
export const FRONTEND_CONSTRAINT = 'frontend'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The frontend a route belongs to; absent on deployment-wide routes. */
    frontend?: string
  }
}

/**
 * Whether the frontends need per-request selection: more than one, or one under a path prefix.
 * One frontend without a prefix answers every host, whether the environment or a list of one
 * describes it (a gateway reached by several names keeps working as it did).
 */
export function needsFrontendSelection(frontends: readonly FrontendConfig[]): boolean {
  return frontends.length > 1 || frontends.some((f) => f.pathPrefix !== '')
}

/**
 * The host of a raw request as fastify's `request.host` reads it: the `Host` header, or the
 * last `X-Forwarded-Host` entry when the peer is a trusted proxy (`BFF_TRUSTED_PROXIES`).
 * Routing runs before fastify's request object exists, so it is read here the same way.
 */
export function createRequestHost(trustedProxies: readonly string[]): (request: IncomingMessage) => string | undefined {
  if (trustedProxies.length === 0) return (request) => request.headers.host
  const isTrusted = proxyAddr.compile([...trustedProxies])
  return (request) => {
    const forwarded = request.headers['x-forwarded-host']
    const peer = request.socket?.remoteAddress
    if (typeof forwarded === 'string' && forwarded !== '' && peer !== undefined && isTrusted(peer, 0)) {
      return forwarded.slice(forwarded.lastIndexOf(',') + 1).trim()
    }
    return request.headers.host
  }
}

/** The frontend a raw request is for, or undefined (pure but for reading the request). */
export function createFrontendOf(
  frontends: readonly FrontendConfig[],
  trustedProxies: readonly string[],
): (request: IncomingMessage) => FrontendConfig | undefined {
  const hostOf = createRequestHost(trustedProxies)
  return (request) => selectFrontend(frontends, hostOf(request), request.url ?? '')
}

/** Adds the `frontend` routing constraint to the app (find-my-way's custom constraint strategy). */
export function addFrontendConstraint(
  app: FastifyInstance,
  frontendOf: (request: IncomingMessage) => FrontendConfig | undefined,
): void {
  app.addConstraintStrategy({
    name: FRONTEND_CONSTRAINT,
    storage() {
      const handlers = new Map<string, unknown>()
      return {
        get: (name: string) => handlers.get(name) ?? null,
        set: (name: string, store: unknown) => {
          handlers.set(name, store)
        },
      }
    },
    deriveConstraint: (request: IncomingMessage) => frontendOf(request)?.name,
    // Routes without the constraint (probes, revocation endpoints) still answer every request.
    mustMatchWhenDerived: false,
  } as Parameters<FastifyInstance['addConstraintStrategy']>[0])
}

/**
 * Makes every route registered in `scope` (and the plugins registered in it) one of
 * `frontend`'s: named in its config (the `frontend` label of the request metrics and the
 * access line) and, with `constrain`, reachable only by requests for that frontend.
 */
export function constrainToFrontend(scope: FastifyInstance, frontend: string, constrain: boolean): void {
  scope.addHook('onRoute', (route) => {
    route.config = { ...route.config, frontend }
    if (constrain) route.constraints = { ...route.constraints, [FRONTEND_CONSTRAINT]: frontend }
  })
}
