import cookie from '@fastify/cookie'
import fastifyStatic from '@fastify/static'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { Config } from './config/types.ts'
import { loggerOptions } from './logger.ts'
import { lazyChildLogger } from './request-logger.ts'
import { createMetrics, type GatewayMetrics } from './metrics.ts'
import { createOidcClient, type OidcClient } from './oidc/client.ts'
import { createLogoutTokenVerifier } from './oidc/logout-token.ts'
import { registerErrorHandler } from './plugins/error-handler.ts'
import { registerObservability, requestIdFor } from './plugins/observability.ts'
import { registerSecurityHeaders } from './plugins/security-headers.ts'
import { registerBackchannelLogoutRoute } from './routes/bff/backchannel-logout.ts'
import { registerCallbackRoute } from './routes/bff/callback.ts'
import { registerLoginRoute } from './routes/bff/login.ts'
import { registerLogoutRoute } from './routes/bff/logout.ts'
import { registerUserRoute } from './routes/bff/user.ts'
import { registerHealthRoutes } from './routes/health.ts'
import { registerProxyRoutes } from './routes/proxy.ts'
import { createConfiguredStore } from './session/create.ts'
import { createKeyring, type Keyring } from './session/keyring.ts'
import type { SessionStore } from './session/types.ts'
import { createTokenManager, type TokenManager } from './tokens/token-manager.ts'

/** What the routes work with, decorated on the fastify instance as `bff`. */
export interface Gateway {
  readonly config: Config
  readonly metrics: GatewayMetrics
  readonly keyring: Keyring
  readonly store: SessionStore
  readonly oidc: OidcClient
  readonly tokens: TokenManager
}

declare module 'fastify' {
  interface FastifyInstance {
    bff: Gateway
  }
}

export interface BuildAppOptions {
  /** Replaces the store the configuration would create (tests of other stores). */
  readonly store?: SessionStore
  /** Replaces fastify's logger options (tests capture logs). */
  readonly logger?: FastifyServerOptions['logger']
}

/**
 * Builds the bffgate fastify application; never listens. Discovers the IdP first, so a
 * wrong issuer or an unreachable IdP fails here with the reason.
 */
export async function buildApp (config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config.logLevel),
    // fastify's own two lines per request are off; observability writes one access line.
    logController: new LogController({ disableRequestLogging: true }),
    // A request's child logger is made only when the request logs something.
    childLoggerFactory: lazyChildLogger,
    // Proxied request bodies stream and are not subject to this limit; it guards bffgate's own endpoints.
    bodyLimit: 64 * 1024,
    // Ids come from requestIdFor: an incoming x-request-id only when it looks like one.
    requestIdHeader: false,
    genReqId: requestIdFor,
    trustProxy: false,
    connectionTimeout: config.server.connectionTimeoutSeconds * 1000,
    requestTimeout: config.server.requestTimeoutSeconds * 1000,
    keepAliveTimeout: config.server.keepAliveTimeoutSeconds * 1000,
    http: { maxHeaderSize: config.server.maxHeaderBytes },
    // Idle keep-alive connections close as soon as close() starts; busy ones after their answer.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  })
  for (const warning of config.warnings) app.log.warn({ event: 'config.warning' }, warning)

  const keyring = createKeyring(config.session.secrets)
  const metrics = createMetrics()
  const store = options.store ?? createConfiguredStore(config, keyring, { observe: metrics.storeOperation, log: app.log })
  app.addHook('onClose', async () => { await store.close() })

  let oidc: OidcClient
  try {
    oidc = await createOidcClient(config.oidc)
  } catch (err) {
    await app.close()
    throw err
  }
  const { session } = config
  const tokens = createTokenManager({
    store,
    oidc,
    events: metrics,
    policy: {
      skewSeconds: session.refreshSkewSeconds,
      idleSeconds: session.idleSeconds,
      refreshTokenKind: session.refreshTokenKind,
      ...(session.checkSeconds !== undefined && { checkSeconds: session.checkSeconds }),
    },
    lockTtlMs: session.refreshLockSeconds * 1000,
    exchangeTimeoutMs: config.oidc.timeoutSeconds * 1000,
    log: app.log,
  })
  app.decorate('bff', { config, metrics, keyring, store, oidc, tokens })

  registerErrorHandler(app)
  await registerObservability(app, { maxEventLoopDelayMs: config.server.maxEventLoopDelayMs })
  registerSecurityHeaders(app)
  await app.register(cookie)
  registerHealthRoutes(app)
  registerLoginRoute(app)
  registerCallbackRoute(app)
  registerUserRoute(app)
  registerLogoutRoute(app)
  if (config.backchannelLogout) {
    if (oidc.jwksUri === undefined) throw new Error('BFF_BACKCHANNEL_LOGOUT is on but the IdP publishes no jwks_uri')
    registerBackchannelLogoutRoute(app, createLogoutTokenVerifier({
      issuer: oidc.issuer,
      clientId: config.oidc.clientId,
      jwksUri: oidc.jwksUri,
      ...(oidc.signingAlgorithms !== undefined && { algorithms: oidc.signingAlgorithms }),
    }))
  }
  registerProxyRoutes(app, config.routes)
  if (config.staticDir !== undefined) {
    await app.register(fastifyStatic, { root: config.staticDir, index: 'index.html', maxAge: 0 })
  }
  return app
}
