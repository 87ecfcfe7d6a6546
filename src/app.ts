import cookie from '@fastify/cookie'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Config, FrontendConfig } from './config/types.ts'
import {
  addFrontendConstraint,
  constrainToFrontend,
  createFrontendOf,
  needsFrontendSelection,
} from './frontends/routing.ts'
import { createFrontendLogoutVerifier } from './frontends/logout-audience.ts'
import { configForFrontend } from './frontends/services.ts'
import { buildAdminApp } from './admin.ts'
import { loggerOptions } from './logger.ts'
import { lazyChildLogger } from './request-logger.ts'
import { createMetrics, type GatewayMetrics } from './metrics.ts'
import { createOidcClient, observedIdpFetch, type OidcClient } from './oidc/client.ts'
import { createLogoutTokenVerifier } from './oidc/logout-token.ts'
import { BffError } from './errors.ts'
import { registerErrorHandler, sendError } from './http/error-handler.ts'
import { registerLoginMetrics } from './login/metrics.ts'
import { registerObservability, requestIdFor } from './http/observability.ts'
import { registerRateLimits } from './http/rate-limit.ts'
import { registerSecurityHeaders } from './http/security-headers.ts'
import { registerSpa } from './spa/static.ts'
import { registerBackchannelLogoutRoute } from './routes/bff/backchannel-logout.ts'
import { registerCallbackRoute } from './login/callback-route.ts'
import { registerLoginRoute } from './login/login-route.ts'
import { registerLogoutRoute } from './routes/bff/logout.ts'
import { registerSessionEventsRoute } from './session-events/route.ts'
import { createSessionStreams, type SessionStreams } from './session-events/streams.ts'
import { registerUserRoute } from './routes/bff/user.ts'
import { registerHealthRoutes } from './routes/health.ts'
import { createProxyHop, registerProxyRoutes, type ProxyHop } from './proxy/routes.ts'
import { registerRevocationChannels } from './revocation/register.ts'
import { createConfiguredStore } from './session/create.ts'
import { createRequestSessions, type RequestSessions } from './http/request-session.ts'
import { createSessionEnding, type SessionEnding } from './session/ending.ts'
import { createKeyring, type Keyring } from './session/keyring.ts'
import type { SessionStore } from './session/types.ts'
import { createTokenManager, type TokenManager } from './tokens/token-manager.ts'
import { inSpan, nameServerSpan } from './span.ts'
import type { Tracing } from './tracing.ts'

/** What the routes work with, decorated on the fastify instance as `bff`. */
export interface BffServices {
  readonly config: Config
  readonly metrics: GatewayMetrics
  readonly keyring: Keyring
  readonly store: SessionStore
  readonly oidc: OidcClient
  readonly tokens: TokenManager
  /** Where sessions end (logout, back-channel logout, refresh refused, expiry). */
  readonly ending: SessionEnding
  /** Every frontend's own services, the first one first (its `oidc` and `tokens` are the ones above). */
  readonly frontends: readonly FrontendServices[]
}

/**
 * One frontend's services (docs/frontends.md), built at start: its OpenID client, a token
 * manager on that client, its cookie's sessions, and the configuration as it reads it.
 */
export interface FrontendServices {
  readonly frontend: FrontendConfig
  readonly config: Config
  readonly oidc: OidcClient
  readonly tokens: TokenManager
  readonly sessions: RequestSessions
}

declare module 'fastify' {
  interface FastifyInstance {
    bff: BffServices
    /**
     * The admin listener's instance (`/metrics` and the probes, see `admin.ts`); not listening
     * until its owner calls `listen` on it; closed when the browser-facing app starts closing.
     */
    admin: FastifyInstance
  }
}

export interface BuildAppOptions {
  /** Replaces the store the configuration would create (tests of other stores). */
  readonly store?: SessionStore
  /** Replaces fastify's logger options (tests capture logs). */
  readonly logger?: FastifyServerOptions['logger']
  /** OpenTelemetry tracing (`startTracing`); absent means none, at no cost. */
  readonly tracing?: Tracing
  /** The clock where time decides behaviour, epoch milliseconds (tests); `Date.now` by default. */
  readonly now?: () => number
}

/**
 * Builds the bffgate fastify application; never listens. Discovers the IdP first, so a
 * wrong issuer or an unreachable IdP fails here with the reason.
 */
export async function buildApp(config: Config, options: BuildAppOptions = {}): Promise<FastifyInstance> {
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
    // request.ip is the connection's peer, or, behind a proxy named in BFF_TRUSTED_PROXIES, the
    // rightmost address of its X-Forwarded-For that is not a trusted proxy (proxy-addr).
    trustProxy: config.trustedProxies.length === 0 ? false : [...config.trustedProxies],
    connectionTimeout: config.server.connectionTimeoutSeconds * 1000,
    requestTimeout: config.server.requestTimeoutSeconds * 1000,
    keepAliveTimeout: config.server.keepAliveTimeoutSeconds * 1000,
    http: { maxHeaderSize: config.server.maxHeaderBytes },
    // Idle keep-alive connections close as soon as close() starts; busy ones after their answer.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // A path the router cannot decode (bad percent-encoding, overlong UTF-8 such as `%c0%ae`)
    // is refused before routing: in bffgate's JSON shape, like every other error.
    frameworkErrors: (err, request, reply) => {
      request.log.debug({ event: 'request.rejected', code: err.code }, err.message)
      sendError(reply, new BffError('BFF_ERR_BAD_REQUEST'))
    },
    // With tracing, each browser request runs inside its server span (context for every child span).
    ...(options.tracing !== undefined && {
      // fastify applies its timeout options only to a server it makes itself: set them here too.
      serverFactory: (handler: (request: IncomingMessage, response: ServerResponse) => void) => {
        const server = createServer(
          {
            maxHeaderSize: config.server.maxHeaderBytes,
            keepAliveTimeout: config.server.keepAliveTimeoutSeconds * 1000,
            requestTimeout: config.server.requestTimeoutSeconds * 1000,
          },
          (request, response) => options.tracing!.serveRequest(request, response, () => handler(request, response)),
        )
        server.setTimeout(config.server.connectionTimeoutSeconds * 1000)
        return server
      },
    }),
  })
  for (const warning of config.warnings) app.log.warn({ event: 'config.warning' }, warning)

  const now = options.now ?? Date.now
  const keyring = createKeyring(config.session.secrets)
  const metrics = createMetrics()
  const configuredStore =
    options.store ?? createConfiguredStore(config, keyring, { observe: metrics.storeOperation, log: app.log, now })
  const { tracing } = options
  const store: SessionStore =
    tracing === undefined
      ? configuredStore
      : {
          ...configuredStore,
          load: (cookieValue, loadOptions) =>
            inSpan(tracing.tracer, 'session.read', {}, () => configuredStore.load(cookieValue, loadOptions)),
          find: (cookieValue, loadOptions) =>
            inSpan(tracing.tracer, 'session.read', {}, () => configuredStore.find(cookieValue, loadOptions)),
        }
  app.addHook('onClose', async () => {
    await store.close()
  })

  const { session } = config
  const ending = createSessionEnding({ store, events: metrics, log: app.log })
  const frontends: FrontendServices[] = []
  try {
    for (const frontend of config.frontends) {
      const view = configForFrontend(config, frontend)
      const oidc = await createOidcClient(view.oidc, {
        observe: metrics.idpRequest,
        now,
        ...(tracing !== undefined && { tracer: tracing.tracer }),
      })
      const tokens = createTokenManager({
        store,
        oidc,
        events: metrics,
        ending,
        policy: {
          skewSeconds: session.refreshSkewSeconds,
          idleSeconds: session.idleSeconds,
          refreshTokenKind: view.session.refreshTokenKind,
          ...(session.checkSeconds !== undefined && { checkSeconds: session.checkSeconds }),
        },
        lockTtlMs: session.refreshLockSeconds * 1000,
        exchangeTimeoutMs: view.oidc.timeoutSeconds * 1000,
        now,
        log: app.log,
      })
      const sessions = createRequestSessions({
        store,
        cookieName: frontend.cookie.name,
        cookiePath: frontend.cookie.path,
        ending,
        frontend: frontend.name,
      })
      frontends.push({ frontend, config: view, oidc, tokens, sessions })
    }
  } catch (err) {
    await app.close()
    throw err
  }
  const primary = frontends[0]!
  const services: BffServices = {
    config,
    metrics,
    keyring,
    store,
    oidc: primary.oidc,
    tokens: primary.tokens,
    ending,
    frontends,
  }
  app.decorate('bff', services)
  const admin = buildAdminApp(services, app.log)
  app.decorate('admin', admin)
  // Closed first: the kubelet's readiness probe then fails at once while requests drain.
  app.addHook('preClose', async () => {
    await admin.close()
  })

  // Several frontends: each request's frontend is resolved once, while it is routed (frontends/routing.ts).
  const selecting = needsFrontendSelection(config.frontends)
  const frontendOf = selecting ? createFrontendOf(config.frontends, config.trustedProxies) : undefined
  if (frontendOf !== undefined) addFrontendConstraint(app, frontendOf)
  registerErrorHandler(
    app,
    frontendOf === undefined ? {} : { isUnknownFrontend: (request) => frontendOf(request.raw) === undefined },
  )
  if (tracing !== undefined) {
    app.addHook('onRequest', (request, _reply, done) => {
      nameServerSpan(request.method, request.routeOptions.url)
      done()
    })
  }
  await registerObservability(app, { maxEventLoopDelayMs: config.server.maxEventLoopDelayMs, frontendField: selecting })
  registerSecurityHeaders(app, {
    publicUrl: config.publicUrl,
    bffPrefixes: config.frontends.map((f) => `${f.pathPrefix}/bff/`),
  })
  registerLoginMetrics(app, {
    cookieNames: config.frontends.map((f) => f.cookie.name),
    callbackPaths: config.frontends.map((f) => `${f.pathPrefix}/bff/callback`),
    metrics,
  })
  await app.register(cookie)
  await registerRateLimits(app, config)
  registerHealthRoutes(app, { store })
  // One registry of session-event streams for the process, whatever frontend opened them:
  // BFF_SESSION_EVENTS_MAX_STREAMS bounds them all (a registry per frontend multiplied it).
  const sessionStreams = createSessionStreams(store, config.sessionEvents, app.log, metrics.sessionEvent, now)
  metrics.countSessionStreams(() => sessionStreams.size())
  // Before the server stops accepting: open streams would hold close() until they end.
  app.addHook('preClose', async () => {
    sessionStreams.close()
  })
  // One hop for the process, whatever frontend's route sends on it: one pool per upstream
  // origin, one WebSocket registry (a store subscription and a sweep), one DPoP nonce cache.
  const proxyHop = createProxyHop({
    store,
    log: app.log,
    upstreamTimeoutSeconds: config.upstreamTimeoutSeconds,
    sessionRoutes: frontends.some((f) => f.config.routes.some((route) => route.token !== 'none')),
  })
  app.addHook('onClose', async () => proxyHop.close())
  for (const own of frontends) {
    // Each frontend's endpoints in a scope of their own, marked (and, with several, routed) as its.
    await app.register(async (scope) => {
      constrainToFrontend(scope, own.frontend.name, selecting)
      await registerFrontend(scope, own, {
        keyring,
        store,
        ending,
        metrics,
        sessionStreams,
        proxyHop,
        now,
      })
    })
  }
  if (config.backchannelLogout) {
    // Deployment-wide (the IdP may call any host name of the gateway); the token's audience
    // names the client, so the frontend, whose sessions end (frontends/logout-audience.ts).
    const verifiers = frontends.map(({ frontend, oidc }) => {
      if (oidc.jwksUri === undefined)
        throw new Error(`BFF_BACKCHANNEL_LOGOUT is on but the IdP of frontend ${frontend.name} publishes no jwks_uri`)
      return {
        frontend: frontend.name,
        issuer: oidc.issuer,
        clientId: frontend.oidc.clientId,
        verify: createLogoutTokenVerifier({
          issuer: oidc.issuer,
          clientId: frontend.oidc.clientId,
          jwksUri: oidc.jwksUri,
          ...(oidc.signingAlgorithms !== undefined && { algorithms: oidc.signingAlgorithms }),
          fetch: observedIdpFetch(metrics.idpRequest, () => 'jwks', tracing?.tracer),
          now,
        }),
      }
    })
    registerBackchannelLogoutRoute(app, {
      verify: selecting ? createFrontendLogoutVerifier(verifiers) : verifiers[0]!.verify,
      store,
      ending,
      metrics,
      ...(selecting && {
        paths: [...new Set(['', ...config.frontends.map((f) => f.pathPrefix)])].map(
          (prefix) => `${prefix}/bff/backchannel-logout`,
        ),
      }),
    })
  }
  // Deployment-wide: a subject's sessions end on every frontend at the issuer the channels speak for.
  registerRevocationChannels(app, {
    config,
    store,
    ending,
    oidc: primary.oidc,
    frontends: frontends.filter((f) => f.oidc.issuer === primary.oidc.issuer).map((f) => f.frontend.name),
    now,
  })
  return app
}

/**
 * One frontend's endpoints, all under its path prefix: login and callback, `/bff/user`,
 * logout, session events, back-channel logout for its client, its API routes and its static files.
 */
async function registerFrontend(
  app: FastifyInstance,
  services: FrontendServices,
  shared: {
    readonly keyring: Keyring
    readonly store: SessionStore
    readonly ending: SessionEnding
    readonly metrics: GatewayMetrics
    readonly sessionStreams: SessionStreams
    readonly proxyHop: ProxyHop
    readonly now: () => number
  },
): Promise<void> {
  const { frontend, config, oidc, tokens, sessions } = services
  const { keyring, store, ending, metrics, sessionStreams, proxyHop, now } = shared
  const pathPrefix = frontend.pathPrefix
  const login = { config, oidc, keyring, store, sessions, now, frontend: { name: frontend.name, pathPrefix } }
  registerLoginRoute(app, login)
  registerCallbackRoute(app, login)
  registerUserRoute(app, { sessions, now, pathPrefix })
  registerLogoutRoute(app, { config, oidc, sessions, ending, pathPrefix })
  registerSessionEventsRoute(app, { config, streams: sessionStreams, sessions, pathPrefix })
  registerProxyRoutes(app, config.routes, { config, tokens, metrics, sessions, hop: proxyHop })
  if (config.staticDir !== undefined) {
    await registerSpa(app, {
      root: config.staticDir,
      contentSecurityPolicy: config.contentSecurityPolicy,
      routePrefixes: config.routes.map((route) => route.path),
      pathPrefix,
    })
  }
}
