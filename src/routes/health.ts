import type { FastifyInstance } from 'fastify'
import { errorDefinitions } from '../errors.ts'
import type { GatewayMetrics } from '../metrics.ts'
import type { SessionStore } from '../session/types.ts'

/**
 * `/healthz`: the process is alive (no dependency). `/readyz`: the session store answers
 * (the IdP metadata was loaded before the app was built). Served on both listeners: load
 * balancers probe the browser port, the kubelet the admin port.
 */
export function registerHealthRoutes(app: FastifyInstance, deps: { readonly store: Pick<SessionStore, 'ping'> }): void {
  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }))
  app.get('/readyz', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    try {
      await deps.store.ping()
      return { status: 'ready' }
    } catch (err) {
      request.log.warn({ event: 'readiness.failed', err }, 'session store unreachable')
      return reply
        .code(503)
        .header('retry-after', '2')
        .send({ status: 'unavailable', error: errorDefinitions.BFF_ERR_STORE_UNAVAILABLE.error })
    }
  })
}

/** `/metrics`: Prometheus text format. Admin listener only: it tells the world how busy you are. */
export function registerMetricsRoute(
  app: FastifyInstance,
  deps: { readonly metrics: Pick<GatewayMetrics, 'registry'> },
): void {
  app.get('/metrics', async (_request, reply) => {
    const { registry } = deps.metrics
    return reply
      .header('cache-control', 'no-store')
      .type(registry.contentType)
      .send(await registry.metrics())
  })
}
