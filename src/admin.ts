import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { BffServices } from './app.ts'
import { registerErrorHandler } from './http/error-handler.ts'
import { registerHealthRoutes, registerMetricsRoute } from './routes/health.ts'

/**
 * The admin listener (`BFF_ADMIN_PORT`): `/metrics`, `/healthz` and `/readyz`, nothing else.
 * A fastify instance of its own, so the browser-facing port never answers `/metrics` and
 * scrapes and probes are neither shed under load nor mixed into the request metrics.
 */
export function buildAdminApp(services: BffServices, log: FastifyBaseLogger): FastifyInstance {
  const admin = Fastify({
    loggerInstance: log.child({ listener: 'admin' }),
    // A scrape every few seconds and a probe per kubelet period would drown the request log.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    trustProxy: false,
    forceCloseConnections: true,
  })
  admin.decorate('bff', services)
  registerErrorHandler(admin)
  registerHealthRoutes(admin, services)
  registerMetricsRoute(admin, services)
  return admin
}
