import proxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { Config, RouteConfig } from '../config/types.ts'
import { BffError } from '../errors.ts'
import type { GatewayMetrics } from '../metrics.ts'
import { guardCsrf } from '../http/csrf.ts'
import { sendError } from '../http/error-handler.ts'
import type { RequestSessions } from '../http/request-session.ts'
import { isLoginStateCookie } from '../login/transaction.ts'
import type { LoadedSession, SessionStore, StoredAccessToken } from '../session/types.ts'
import { tokenKeyFor } from '../tokens/refresh-policy.ts'
import type { TokenManager, TokenRequest } from '../tokens/token-manager.ts'
import { hasDotSegment } from './dot-segments.ts'
import { createUpstreamDpop, type UpstreamDpop } from './dpop.ts'
import { BUFFERED_RESPONSE_MAX_BYTES, createForwarder, type Forwarder, type ForwardHandlers } from './forwarder.ts'
import { replayReasonFor, type ReplayReason } from './replay.ts'
import {
  clientForwardingHeaders,
  isDpopToken,
  privateForSharedCaches,
  upstreamCredentials,
  upstreamRequestHeaders,
  withoutCookies,
  type UpstreamTarget,
} from './upstream-headers.ts'
import { createWebSocketSessions, type ClosableSocket, type WebSocketSessions } from './websocket-sessions.ts'

/**
 * The proxy, read top-down: {@link registerProxyRoutes} registers one route per configured
 * upstream; each request then passes {@link checkRequest} (the pre-handler: path, CSRF,
 * session, token), {@link forwardRequest} (the handler: DPoP proof, then the hop), and
 * {@link onUpstreamAnswer} (what of the answer reaches the browser, or a {@link replay}).
 * The policies live beside this file: upstream-headers.ts, replay.ts, dpop.ts; the hop is
 * forwarder.ts; WebSockets and streamed answers are tracked by websocket-sessions.ts.
 */

/** What the proxy needs, handed in by app.ts. */
export interface ProxyDependencies {
  readonly config: Pick<Config, 'publicUrl' | 'session' | 'oidc'>
  readonly tokens: TokenManager
  readonly metrics: Pick<GatewayMetrics, 'upstreamResponse'>
  readonly sessions: RequestSessions
  /** The process's one hop, shared by every frontend's routes ({@link createProxyHop}). */
  readonly hop: ProxyHop
}

/**
 * What every frontend's routes share in one process: the hop's keep-alive pools (one per
 * upstream origin, whichever frontend's route sends to it), the DPoP nonces upstreams gave,
 * and the registry that closes WebSockets and streamed answers when their session ends (one
 * store subscription and one sweep for the process).
 */
export interface ProxyHop {
  readonly forwarder: Forwarder
  readonly dpop: UpstreamDpop
  /** Present when some route carries a session. */
  readonly webSockets: WebSocketSessions | undefined
  close(): Promise<void>
}

export function createProxyHop(options: {
  readonly store: SessionStore
  readonly log: { info(obj: object, msg: string): void }
  readonly upstreamTimeoutSeconds: number
  /** Whether some route of some frontend carries a session (only then is the registry needed). */
  readonly sessionRoutes: boolean
}): ProxyHop {
  const forwarder = createForwarder({ headersTimeoutMs: options.upstreamTimeoutSeconds * 1000 })
  // The registry holds a store subscription and a sweep timer: made only when some route needs it.
  const webSockets = options.sessionRoutes ? createWebSocketSessions(options.store, { log: options.log }) : undefined
  return {
    forwarder,
    dpop: createUpstreamDpop(),
    webSockets,
    async close() {
      webSockets?.close()
      await forwarder.close()
    },
  }
}

/** What the pre-handler learned, kept for the header rewrite and a possible replay. */
interface ProxyState {
  session: LoadedSession
  /** The access token sent upstream (its `Authorization` value is derived from it). */
  token: StoredAccessToken
  /** The `DPoP` proof for this request, when the token is DPoP-bound. */
  dpopProof: string | null
  /** Why the request was sent again, once it was (never twice). */
  replayReason?: ReplayReason
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the proxy pre-handler when the request carries a token upstream. */
    proxyState: ProxyState | null
  }
}

/** One configured route with everything its requests need. */
interface ProxyRoute {
  readonly route: RouteConfig
  readonly tokenRequest: TokenRequest
  readonly target: UpstreamTarget
  readonly publicUrl: string
  /** Whether a cookie name is one of bffgate's (an upstream may not set it). */
  readonly isOurCookie: (name: string) => boolean
  readonly deps: ProxyDependencies
  readonly forwarder: Forwarder
  readonly dpop: UpstreamDpop
  /** Present when some route carries a session. */
  readonly webSockets: WebSocketSessions | undefined
}

/**
 * One @fastify/http-proxy registration per configured route: only configured upstreams are
 * reachable (http-proxy refuses absolute URLs and `..` traversal out of the prefix). Bodies
 * stream both ways. API routes never redirect: a missing or ended session is a JSON 401.
 */
export function registerProxyRoutes(
  app: FastifyInstance,
  routes: readonly RouteConfig[],
  deps: ProxyDependencies,
): void {
  app.decorateRequest('proxyState', null)
  const {
    publicUrl,
    session: { cookieName },
  } = deps.config
  const { host: publicHost, protocol } = new URL(publicUrl)
  const { forwarder, dpop, webSockets } = deps.hop
  const isOurCookie = (name: string): boolean => name === cookieName || isLoginStateCookie(name)

  for (const route of routes) {
    const proxyRoute: ProxyRoute = {
      route,
      tokenRequest: {
        tokenKey: tokenKeyFor(route, { ownDpop: route.dpop && !deps.config.oidc.dpop }),
        dpop: route.dpop || deps.config.oidc.dpop,
        ...(route.audience !== undefined && { audience: route.audience }),
        ...(route.scope !== undefined && { scope: route.scope }),
      },
      target: { host: new URL(route.upstream).host, publicHost, publicProto: protocol.slice(0, -1) },
      publicUrl,
      isOurCookie,
      deps,
      forwarder,
      dpop,
      webSockets,
    }
    const httpOptions = {
      upstream: route.upstream,
      prefix: route.path,
      rewritePrefix: route.rewritePrefix,
      // The query goes upstream as the browser sent it (the handler appends it); without this,
      // http-proxy would parse and re-serialize it on every request only for us to drop it.
      preRewrite: (url: string) => url.split('?', 1)[0]!,
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => checkRequest(proxyRoute, request, reply),
      // @fastify/http-proxy routes the request and validates `dest` (the rewritten path); the
      // hop itself is bffgate's forwarder, not reply-from (see forwarder.ts).
      async handler(request, reply, dest) {
        await forwardRequest(proxyRoute, request, reply, dest)
        return reply
      },
    } satisfies FastifyHttpProxyOptions
    // The plugin's option types are a union on `websocket`; each half is checked here.
    app.register(proxy, { ...httpOptions, ...(route.websocket ? webSocketOptions(proxyRoute) : {}) } as never)
  }
}

/**
 * The pre-handler: a path that could leave the route, a failed CSRF check, a missing session
 * or no token each end the request here, before anything reaches the upstream.
 */
async function checkRequest(proxyRoute: ProxyRoute, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const { route, deps } = proxyRoute
  // Before anything else: a path some upstream could read as leaving the route is never sent.
  if (hasDotSegment(request.url.split('?', 1)[0]!)) {
    request.log.debug({ event: 'proxy.path_refused', route: route.path }, 'path with a dot segment refused')
    throw new BffError('BFF_ERR_PATH_DOT_SEGMENT')
  }
  // Only a WebSocket route takes a handshake (elsewhere `Upgrade` changes nothing).
  const upgrade = route.websocket && isWebSocketUpgrade(request)
  // A WebSocket handshake cannot carry the CSRF header: its Origin must be ours instead.
  if (upgrade) guardWebSocketOrigin(request, proxyRoute.publicUrl)
  else guardCsrf(request, proxyRoute.publicUrl, route.csrf)
  if (route.token === 'none') return
  const session = await deps.sessions.find(request, { slide: true })
  if ('missing' in session) {
    if (route.token === 'optional') return
    throw deps.sessions.missingError(request, reply, session)
  }
  const result = await deps.tokens.getAccessToken(session, proxyRoute.tokenRequest)
  if (result.kind === 'error') {
    if (result.sessionEnded) deps.sessions.clearCookie(reply)
    throw result.error
  }
  request.proxyState = { session, token: result.token, dpopProof: null }
  if (upgrade) {
    await prove(proxyRoute, request, request.proxyState, webSocketPathOf(route, request))
    proxyRoute.webSockets!.expect(request.raw.socket as Socket, session)
  }
}

/** The handler: a proof for a DPoP-bound token, then the hop with the browser's query appended. */
async function forwardRequest(
  proxyRoute: ProxyRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  dest: string,
): Promise<void> {
  const state = request.proxyState
  if (state !== null && isDpopToken(state.token)) await prove(proxyRoute, request, state, dest)
  const queryAt = request.url.indexOf('?')
  send(proxyRoute, request, reply, state, queryAt === -1 ? dest : dest + request.url.slice(queryAt))
}

/** Sends the request upstream (again, for a replay); the forwarder answers the reply. */
function send(
  proxyRoute: ProxyRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  state: ProxyState | null,
  path: string,
): void {
  const { route, forwarder } = proxyRoute
  const started = performance.now()
  const observe = (statusCode: number): void =>
    proxyRoute.deps.metrics.upstreamResponse(route.path, statusCode, (performance.now() - started) / 1000)
  const handlers: ForwardHandlers = {
    onHead: (statusCode, headers) => {
      observe(statusCode)
      return onUpstreamAnswer(proxyRoute, request, reply, state, statusCode, headers)
    },
    onDropped: () => {
      replay(proxyRoute, request, reply, state!, path).catch((err: unknown) => {
        request.log.error({ event: 'proxy.replay_error', err }, 'replay failed')
        if (!reply.sent) sendError(reply, new BffError('BFF_ERR_INTERNAL'))
      })
    },
    onFailure: (kind, err) => {
      request.log.warn({ event: 'upstream.failed', upstream: route.upstream, err }, 'upstream request failed')
      observe(kind === 'timeout' ? 504 : 502)
      if (!reply.sent)
        sendError(reply, new BffError(kind === 'timeout' ? 'BFF_ERR_UPSTREAM_TIMEOUT' : 'BFF_ERR_UPSTREAM_UNREACHABLE'))
    },
  }
  forwarder.forward(
    reply,
    {
      origin: route.upstream,
      path,
      method: request.method,
      headers: upstreamRequestHeaders(
        request,
        state === null ? undefined : upstreamCredentials(state.token, state.dpopProof),
        proxyRoute.target,
      ),
      body: request.body instanceof Readable ? request.body : undefined,
    },
    handlers,
  )
}

/**
 * The upstream answered: `'drop'` to replay it (see replay.ts), else the headers the browser
 * gets. A streamed answer is tracked so that it is cut when its session ends.
 */
function onUpstreamAnswer(
  proxyRoute: ProxyRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  state: ProxyState | null,
  statusCode: number,
  headers: ForwardHeaders,
): ForwardHeaders | 'drop' {
  proxyRoute.dpop.remember(proxyRoute.route.upstream, headers)
  const why = state === null ? undefined : replayReasonFor(request, state, statusCode, headers)
  if (why !== undefined) {
    state!.replayReason = why
    return 'drop'
  }
  // An answer that streams (server-sent events, a download) may outlive its session: it is
  // cut when the session ends, as a WebSocket is closed.
  if (state !== null && !(Number(headers['content-length']) <= BUFFERED_RESPONSE_MAX_BYTES))
    proxyRoute.webSockets!.track(state.session, closableAnswer(reply))
  // An upstream must not set bffgate's cookies; an answer fetched with the user's token is for
  // this user only (RFC 9111 §3.5).
  return withoutCookies(state === null ? headers : privateForSharedCaches(headers), proxyRoute.isOurCookie)
}

type ForwardHeaders = Parameters<ForwardHandlers['onHead']>[1]

/**
 * One replay, for a request without a body: after a 401 `invalid_token` with a new token
 * from one exchange (shared, as always), or after a 401 `use_dpop_nonce` with a new proof.
 */
async function replay(
  proxyRoute: ProxyRoute,
  request: FastifyRequest,
  reply: FastifyReply,
  state: ProxyState,
  path: string,
): Promise<void> {
  if (state.replayReason === 'invalid_token') {
    const result = await proxyRoute.deps.tokens.getAccessToken(state.session, {
      ...proxyRoute.tokenRequest,
      rejectedToken: state.token.access_token,
    })
    if (result.kind === 'error') {
      if (result.sessionEnded) proxyRoute.deps.sessions.clearCookie(reply)
      request.log.info(
        { event: 'proxy.replay_failed', code: result.error.code },
        'no new token after the upstream refused one',
      )
      sendError(reply, result.error)
      return
    }
    state.token = result.token
  }
  await prove(proxyRoute, request, state, path)
  request.log.info(
    { event: 'proxy.replayed', reason: state.replayReason },
    'upstream refused the request: replayed once',
  )
  send(proxyRoute, request, reply, state, path)
}

/**
 * Signs a fresh DPoP proof when the token is DPoP-bound, for the upstream path the request
 * goes to. HTTP requests sign the path @fastify/http-proxy computed and validated; a WebSocket
 * handshake, whose upgrade never reaches our handler, signs its URL's path under the route's rewrite.
 */
async function prove(proxyRoute: ProxyRoute, request: FastifyRequest, state: ProxyState, path: string): Promise<void> {
  state.dpopProof = await proxyRoute.dpop.prove(state.session.record.dpop_key, state.token, {
    method: request.method,
    upstream: proxyRoute.route.upstream,
    path,
  })
}

// ---- WebSockets ---------------------------------------------------------------------------

function webSocketOptions(proxyRoute: ProxyRoute) {
  return {
    websocket: true as const,
    wsClientOptions: {
      // The upstream handshake carries the access token and bffgate's forwarding headers,
      // never the browser's cookies or other headers.
      rewriteRequestHeaders: (headers: object, request: FastifyRequest) => {
        const state = request.proxyState
        return {
          ...headers,
          ...(state !== null && upstreamCredentials(state.token, state.dpopProof)),
          ...clientForwardingHeaders(request, proxyRoute.target),
        }
      },
    },
    wsHooks: { onConnect: (_context: unknown, source: ClosableSocket) => proxyRoute.webSockets!.opened(source) },
  }
}

function isWebSocketUpgrade(request: FastifyRequest): boolean {
  return request.headers.upgrade?.toLowerCase() === 'websocket'
}

function guardWebSocketOrigin(request: FastifyRequest, publicUrl: string): void {
  if (request.headers.origin === publicUrl) return
  request.log.warn(
    { event: 'csrf.rejected', reason: 'websocket_origin' },
    'WebSocket handshake from another origin refused',
  )
  throw new BffError('BFF_ERR_CSRF_ORIGIN_MISMATCH')
}

/** The upstream path of a WebSocket handshake: its URL's path under the route's rewrite. */
function webSocketPathOf(route: RouteConfig, request: FastifyRequest): string {
  const path = request.url.split('?', 1)[0]!.slice(route.path.length)
  return `${route.rewritePrefix}${path.startsWith('/') || path === '' ? path : `/${path}`}`
}

/** A streamed answer as the session registry closes it: the connection is cut (the upstream request is aborted with it). */
function closableAnswer(reply: FastifyReply): ClosableSocket {
  return {
    close: () => {
      reply.raw.destroy()
    },
    once: (event, listener) => reply.raw.once(event, listener),
  }
}
