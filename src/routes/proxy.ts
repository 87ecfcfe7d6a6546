import proxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { RouteConfig } from '../config/types.ts'
import { BffError } from '../errors.ts'
import { privateForSharedCaches } from '../gateway/cache-control.ts'
import { hasDotSegment } from '../gateway/dot-segments.ts'
import { BUFFERED_RESPONSE_MAX_BYTES, connectionListed, createForwarder, isHopByHop } from '../gateway/forwarder.ts'
import { forwardingHeaders, isForwardingHeader } from '../gateway/forwarding.ts'
import { setCookieName } from '../gateway/set-cookie.ts'
import { guardCsrf } from '../plugins/csrf.ts'
import { sendError } from '../plugins/error-handler.ts'
import { createWebSocketSessions, type ClosableSocket } from '../plugins/websocket-sessions.ts'
import { clearSessionCookie, loadRequestSession, missingSessionError } from '../plugins/session.ts'
import { isLoginStateCookie } from '../session/cookie.ts'
import type { LoadedSession, StoredAccessToken } from '../session/types.ts'
import { tokenKeyFor } from '../tokens/refresh-policy.ts'
import { createDpopProof } from '../oidc/dpop.ts'
import type { TokenRequest } from '../tokens/token-manager.ts'

/** What the proxy preHandler learned, kept for the header rewrite and a possible replay. */
interface ProxyState {
  session: LoadedSession
  /** The access token sent upstream (its `Authorization` value is derived from it). */
  token: StoredAccessToken
  /** The `DPoP` proof for this request, when the token is DPoP-bound. */
  dpopProof: string | null
  /** Why the request was sent again, once it was (never twice). */
  replayReason?: 'invalid_token' | 'use_dpop_nonce'
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the proxy preHandler when the request carries a token upstream. */
    proxyState: ProxyState | null
  }
}

const REPLAYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE'])

/**
 * The error of a Bearer or DPoP challenge that bffgate can act on: `invalid_token` (the
 * token itself was refused, RFC 6750 §3.1: not the caller's rights) or `use_dpop_nonce`
 * (RFC 9449 §9: send the proof again with the upstream's nonce).
 */
function challengeError (header: string | string[] | undefined): 'invalid_token' | 'use_dpop_nonce' | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header
  if (value === undefined || !/^\s*(bearer|dpop)\b/i.test(value)) return undefined
  const error = /\berror\s*=\s*"?([a-z_]+)"?/i.exec(value)?.[1]
  return error === 'invalid_token' || error === 'use_dpop_nonce' ? error : undefined
}

function isDpopToken (token: StoredAccessToken): boolean {
  return token.token_type.toLowerCase() === 'dpop'
}

/** A request can be sent again only when it has no body (the body streamed and is gone). */
function isReplayable (request: FastifyRequest): boolean {
  const length = request.headers['content-length']
  return REPLAYABLE_METHODS.has(request.method) && (length === undefined || length === '0') && request.headers['transfer-encoding'] === undefined
}

function isWebSocketUpgrade (request: FastifyRequest): boolean {
  return request.headers.upgrade?.toLowerCase() === 'websocket'
}

function guardWebSocketOrigin (request: FastifyRequest): void {
  if (request.headers.origin === request.server.bff.config.publicUrl) return
  request.log.warn({ event: 'csrf.rejected', reason: 'websocket_origin' }, 'WebSocket handshake from another origin refused')
  throw new BffError('BFF_ERR_CSRF_ORIGIN_MISMATCH')
}

/** A streamed answer as the session registry closes it: the connection is cut (the upstream request is aborted with it). */
function closableAnswer (reply: FastifyReply): ClosableSocket {
  return {
    close: () => { reply.raw.destroy() },
    once: (event, listener) => reply.raw.once(event, listener),
  }
}

/** The `Authorization` (and `DPoP`) headers for the upstream; none without a token. */
function upstreamCredentials (state: ProxyState | null): { authorization?: string; dpop?: string } {
  if (state === null) return {}
  return {
    authorization: `${isDpopToken(state.token) ? 'DPoP' : 'Bearer'} ${state.token.access_token}`,
    ...(state.dpopProof !== null && { dpop: state.dpopProof }),
  }
}

/** Browser headers that never reach an upstream: its credentials for bffgate, and ours. */
const BROWSER_CREDENTIALS = new Set(['cookie', 'authorization', 'x-csrf', 'dpop', 'proxy-authorization', 'host'])

/**
 * The forwarding headers bffgate writes for a request: the client is the connection's peer,
 * or, behind proxies named in `BFF_TRUSTED_PROXIES`, the rightmost untrusted address of their
 * `X-Forwarded-For` (fastify's `trustProxy`: `request.ips` is that path, peer first).
 */
function ownForwardingHeaders (request: FastifyRequest, forwarded: { publicHost: string; publicProto: string }): Record<string, string> {
  const chain = request.ips === undefined ? [request.ip] : request.ips.toReversed()
  return forwardingHeaders(chain, forwarded.publicHost, forwarded.publicProto)
}

/**
 * The headers an upstream gets: the browser's, without hop-by-hop headers, without its
 * credentials and without forwarding headers (only bffgate's own reach the upstream); the
 * access token (and DPoP proof) when the route carries one; the request id (the same as in
 * our logs, so upstream logs correlate) and bffgate's forwarding headers.
 */
function upstreamRequestHeaders (request: FastifyRequest, state: ProxyState | null, forwarded: { host: string; publicHost: string; publicProto: string }): IncomingHttpHeaders {
  const incoming = request.headers
  const listed = connectionListed(incoming)
  const out: IncomingHttpHeaders = {}
  for (const name in incoming) {
    if (!BROWSER_CREDENTIALS.has(name) && !isHopByHop(name, listed) && !isForwardingHeader(name)) out[name] = incoming[name]
  }
  out.host = forwarded.host
  if (state !== null) Object.assign(out, upstreamCredentials(state))
  out['x-request-id'] = request.id
  Object.assign(out, ownForwardingHeaders(request, forwarded))
  return out
}

/**
 * One @fastify/http-proxy registration per configured route: only configured upstreams are
 * reachable (http-proxy refuses absolute URLs and `..` traversal out of the prefix). Bodies
 * stream both ways. API routes never redirect: a missing or ended session is a JSON 401.
 */
export function registerProxyRoutes (app: FastifyInstance, routes: readonly RouteConfig[]): void {
  app.decorateRequest('proxyState', null)
  /** The latest `DPoP-Nonce` each upstream origin handed out (RFC 9449 §9). */
  const dpopNonces = new Map<string, string>()
  const { publicUrl, session: { cookieName } } = app.bff.config
  const publicHost = new URL(publicUrl).host
  const publicProto = new URL(publicUrl).protocol.slice(0, -1)
  const forwarder = createForwarder({ headersTimeoutMs: app.bff.config.upstreamTimeoutSeconds * 1000 })
  app.addHook('onClose', async () => forwarder.close())
  // Only with a route that carries a session: the registry holds a Redis subscription and a
  // sweep timer, and closes WebSockets and long-lived answers when their session ends.
  const webSockets = routes.some((route) => route.token !== 'none') ? createWebSocketSessions(app.bff.store, { log: app.log }) : undefined
  if (webSockets !== undefined) app.addHook('onClose', async () => webSockets.close())
  /**
   * An upstream must not set (or overwrite) bffgate's own cookies on the app's origin: each
   * line's name is read as a browser reads it (`__Host-Http-bff =x`, `=__Host-Http-bff=x`).
   */
  const withoutOurCookies = (headers: IncomingHttpHeaders): IncomingHttpHeaders => {
    const cookies = headers['set-cookie']
    if (cookies === undefined) return headers
    headers['set-cookie'] = cookies.filter((line) => {
      const name = setCookieName(line)
      return name !== cookieName && !isLoginStateCookie(name)
    })
    return headers
  }

  for (const route of routes) {
    const tokenRequest: TokenRequest = {
      tokenKey: tokenKeyFor(route, { ownDpop: route.dpop && !app.bff.config.oidc.dpop }),
      dpop: route.dpop || app.bff.config.oidc.dpop,
      ...(route.audience !== undefined && { audience: route.audience }),
      ...(route.scope !== undefined && { scope: route.scope }),
    }

    /**
     * Signs a fresh DPoP proof when the token is DPoP-bound, for the upstream path the request
     * goes to (`htu` has no query). HTTP requests sign the path @fastify/http-proxy computed and
     * validated; a WebSocket handshake, whose upgrade never reaches our handler, signs its URL's
     * path under the route's rewrite.
     */
    const proveToken = async (request: FastifyRequest, state: ProxyState, path: string): Promise<void> => {
      const key = state.session.record.dpop_key
      state.dpopProof = isDpopToken(state.token) && key !== undefined
        ? await createDpopProof(key, { method: request.method, url: `${route.upstream}${path.split('?', 1)[0]}`, accessToken: state.token.access_token, nonce: dpopNonces.get(route.upstream) })
        : null
    }
    const webSocketPathOf = (request: FastifyRequest): string => {
      const path = request.url.split('?', 1)[0]!.slice(route.path.length)
      return `${route.rewritePrefix}${path.startsWith('/') || path === '' ? path : `/${path}`}`
    }

    const forwarded = { host: new URL(route.upstream).host, publicHost, publicProto }
    const respond = (request: FastifyRequest, reply: FastifyReply, state: ProxyState | null, path: string): void => {
      const started = performance.now()
      const observeUpstream = (statusCode: number) => app.bff.metrics.upstreamResponse(route.path, statusCode, (performance.now() - started) / 1000)
      forwarder.forward(reply, {
        origin: route.upstream,
        path,
        method: request.method,
        headers: upstreamRequestHeaders(request, state, forwarded),
        body: request.body instanceof Readable ? request.body : undefined,
      }, {
        onHead (statusCode, headers) {
          observeUpstream(statusCode)
          const nonce = headers['dpop-nonce']
          if (typeof nonce === 'string' && nonce !== '') dpopNonces.set(route.upstream, nonce)
          const why = state !== null && state.replayReason === undefined && statusCode === 401 && isReplayable(request)
            ? challengeError(headers['www-authenticate'])
            : undefined
          if (state !== null && (why === 'invalid_token' || (why === 'use_dpop_nonce' && isDpopToken(state.token)))) {
            state.replayReason = why
            return 'drop'
          }
          // An answer that streams (server-sent events, a download) may outlive its session: it is
          // cut when the session ends, as a WebSocket is closed.
          if (state !== null && !(Number(headers['content-length']) <= BUFFERED_RESPONSE_MAX_BYTES)) webSockets!.track(state.session, closableAnswer(reply))
          // An answer fetched with the user's token is for this user only (RFC 9111 §3.5).
          return withoutOurCookies(state === null ? headers : privateForSharedCaches(headers))
        },
        onDropped () {
          replay(request, reply, state!, path).catch((err: unknown) => {
            request.log.error({ event: 'proxy.replay_error', err }, 'replay failed')
            if (!reply.sent) sendError(reply, new BffError('BFF_ERR_INTERNAL'))
          })
        },
        onFailure (kind, err) {
          request.log.warn({ event: 'upstream.failed', upstream: route.upstream, err }, 'upstream request failed')
          observeUpstream(kind === 'timeout' ? 504 : 502)
          if (!reply.sent) sendError(reply, new BffError(kind === 'timeout' ? 'BFF_ERR_UPSTREAM_TIMEOUT' : 'BFF_ERR_UPSTREAM_UNREACHABLE'))
        },
      })
    }

    /**
     * One replay, for a request without a body: after a 401 `invalid_token` with a new token
     * from one exchange (shared, as always), or after a 401 `use_dpop_nonce` with a new proof.
     */
    const replay = async (request: FastifyRequest, reply: FastifyReply, state: ProxyState, path: string): Promise<void> => {
      if (state.replayReason === 'invalid_token') {
        const result = await app.bff.tokens.getAccessToken(state.session, { ...tokenRequest, rejectedToken: state.token.access_token })
        if (result.kind === 'error') {
          if (result.sessionEnded) clearSessionCookie(reply)
          request.log.info({ event: 'proxy.replay_failed', code: result.error.code }, 'no new token after the upstream refused one')
          sendError(reply, result.error)
          return
        }
        state.token = result.token
      }
      await proveToken(request, state, path)
      request.log.info({ event: 'proxy.replayed', reason: state.replayReason }, 'upstream refused the request: replayed once')
      respond(request, reply, state, path)
    }

    const httpOptions = {
      upstream: route.upstream,
      prefix: route.path,
      rewritePrefix: route.rewritePrefix,
      // The query goes upstream as the browser sent it (the handler appends it); without this,
      // http-proxy would parse and re-serialize it on every request only for us to drop it.
      preRewrite: (url: string) => url.split('?', 1)[0]!,
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
        // Before anything else: a path some upstream could read as leaving the route is never sent.
        if (hasDotSegment(request.url.split('?', 1)[0]!)) {
          request.log.debug({ event: 'proxy.path_refused', route: route.path }, 'path with a dot segment refused')
          throw new BffError('BFF_ERR_PATH_DOT_SEGMENT')
        }
        // Only a WebSocket route takes a handshake (elsewhere `Upgrade` changes nothing).
        const upgrade = route.websocket && isWebSocketUpgrade(request)
        // A WebSocket handshake cannot carry the CSRF header: its Origin must be ours instead.
        if (upgrade) guardWebSocketOrigin(request)
        else guardCsrf(request, route.csrf)
        if (route.token === 'none') return
        const session = await loadRequestSession(request, { slide: true })
        if (session === undefined) {
          if (route.token === 'optional') return
          throw missingSessionError(request, reply)
        }
        const result = await app.bff.tokens.getAccessToken(session, tokenRequest)
        if (result.kind === 'error') {
          if (result.sessionEnded) clearSessionCookie(reply)
          throw result.error
        }
        request.proxyState = { session, token: result.token, dpopProof: null }
        if (upgrade) {
          await proveToken(request, request.proxyState, webSocketPathOf(request))
          webSockets!.expect(request.raw.socket as Socket, session)
        }
      },
      // @fastify/http-proxy routes the request and validates `dest` (the rewritten path); the
      // hop itself is bffgate's forwarder, not reply-from (see forwarder.ts).
      async handler (request, reply, dest) {
        const state = request.proxyState
        if (state !== null && isDpopToken(state.token)) await proveToken(request, state, dest)
        const queryAt = request.url.indexOf('?')
        respond(request, reply, state, queryAt === -1 ? dest : dest + request.url.slice(queryAt))
        return reply
      },
    } satisfies FastifyHttpProxyOptions
    const webSocketOptions = route.websocket
      ? {
          websocket: true as const,
          wsClientOptions: {
            // The upstream handshake carries the access token and bffgate's forwarding headers,
            // never the browser's cookies or other headers.
            rewriteRequestHeaders: (headers: object, request: FastifyRequest) => ({
              ...headers,
              ...upstreamCredentials(request.proxyState),
              ...ownForwardingHeaders(request, forwarded),
            }),
          },
          wsHooks: { onConnect: (_context: unknown, source: ClosableSocket) => webSockets!.opened(source) },
        }
      : {}
    // The plugin's option types are a union on `websocket`; each half is checked above.
    app.register(proxy, { ...httpOptions, ...webSocketOptions } as never)
  }
}
