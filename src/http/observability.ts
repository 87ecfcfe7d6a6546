import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { BffError } from '../errors.ts'
import { accessLineWriter } from '../logger.ts'
import { answeredErrorCode, prepareError } from './error-handler.ts'

/** An incoming `x-request-id` is kept only if it looks like an id (no log injection, bounded size). */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/
const PROBES = new Set(['/healthz', '/readyz'])
const OVERLOAD_RETRY_AFTER_SECONDS = 2

/**
 * Generated request ids: a random prefix per process (12 base64url characters, 72 bits, so
 * replicas and restarts do not collide) and a counter. A request id correlates log lines and
 * is echoed to the caller and the upstream; it grants nothing, so it need not be unguessable,
 * only unique, and a counter costs less than a UUID per request.
 */
const ID_PREFIX = randomBytes(9).toString('base64url')
let lastId = 0

/** A fresh request id: `<process prefix>-<counter in base 36>`. */
function newRequestId(): string {
  lastId = lastId === Number.MAX_SAFE_INTEGER ? 1 : lastId + 1
  return `${ID_PREFIX}-${lastId.toString(36)}`
}

/**
 * fastify's `genReqId`: the caller's `x-request-id` when it is a plausible id (a load balancer
 * or the SPA set it, so their logs and ours correlate), else a fresh one ({@link newRequestId}).
 */
export function requestIdFor(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id']
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : newRequestId()
}

/**
 * The bounded metrics label of a request: the route pattern fastify matched, with a proxied
 * route's wildcard removed (`/api/*` → `/api`), or `unmatched`. Never the raw URL, whose
 * paths and ids would make one series per request.
 */
function routeLabel(request: FastifyRequest, pattern: string | undefined): string {
  if (pattern === undefined || request.is404) return 'unmatched'
  return pattern.endsWith('/*') ? pattern.slice(0, -2) || '/' : pattern
}

/**
 * Request ids echoed to the caller, one access line and the metrics per request, and load shedding: while the event
 * loop lags beyond the configured delay, requests other than the probes get a 503 JSON with
 * `Retry-After` at once, before they queue up behind the stall.
 */
export async function registerObservability(
  app: FastifyInstance,
  options: {
    maxEventLoopDelayMs: number
    /** Several frontends: the access line names the request's (the metrics always carry the label). */
    frontendField?: boolean
  },
): Promise<void> {
  const frontendField = options.frontendField === true
  // Callback-style hooks: nothing here awaits, and an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  // The access line: on the root logger with the id as a field (no child logger per request),
  // a flat object of short fields (no serializer or redaction path applies), never the URL
  // (its path can hold ids, its query string codes) nor any header.
  const accessLines = accessLineWriter(app.log)
  app.addHook('onClose', (_app, done) => {
    accessLines.close()
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const routeOptions = request.routeOptions
    const route = routeLabel(request, routeOptions.url)
    // The frontend the route belongs to (frontends/routing.ts); none for deployment-wide ones.
    const frontend = request.is404 ? 'none' : (routeOptions.config.frontend ?? 'none')
    const ms = reply.elapsedTime
    app.bff.metrics.httpRequest(route, request.method, reply.statusCode, ms / 1000, frontend)
    accessLines.write({
      reqId: request.id,
      method: request.method,
      route,
      frontend: frontendField ? frontend : undefined,
      status: reply.statusCode,
      ms: Math.round(ms * 100) / 100,
      code: answeredErrorCode(reply),
    })
    done()
  })
  if (options.maxEventLoopDelayMs > 0) {
    const shed = (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      // Probes answer regardless: restarting a busy pod (liveness) would make things worse.
      if (PROBES.has(request.url.split('?')[0]!)) return undefined
      request.log.warn({ event: 'load.shed', type, value }, 'overloaded: request refused')
      app.bff.metrics.loadShed()
      return prepareError(reply, new BffError('BFF_ERR_OVERLOADED', { retryAfter: OVERLOAD_RETRY_AFTER_SECONDS }))
    }
    await app.register(underPressure, {
      maxEventLoopDelay: options.maxEventLoopDelayMs,
      // The plugin sends what the handler returns (its types only admit void); undefined lets the request through.
      pressureHandler: shed as (
        request: FastifyRequest,
        reply: FastifyReply,
        type: string,
        value: number | undefined,
      ) => void,
    })
  }
}
