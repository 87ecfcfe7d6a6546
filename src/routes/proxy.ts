import proxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { RouteConfig } from '../config/types.ts'
import { BffError } from '../errors.ts'
import { guardCsrf } from '../plugins/csrf.ts'
import { sendError } from '../plugins/error-handler.ts'
import type { ClosableSocket, WebSocketSessions } from '../plugins/websocket-sessions.ts'
import { clearSessionCookie, loadRequestSession, missingSessionError } from '../plugins/session.ts'
import { isLoginStateCookie } from '../session/cookie.ts'
import type { LoadedSession, StoredAccessToken } from '../session/types.ts'
import { tokenKeyFor } from '../tokens/refresh-policy.ts'
import { createDpopProof } from '../oidc/dpop.ts'
import type { TokenRequest } from '../tokens/token-manager.ts'

/** What the proxy preHandler learned, kept for the header rewrite and a possible replay. */
interface ProxyState {
  session: LoadedSession
  tokenRequest: TokenRequest
  /** The access token sent upstream (its `Authorization` value is derived from it). */
  token: StoredAccessToken
  /** The `DPoP` proof for this request, when the token is DPoP-bound. */
  dpopProof: string | null
  /** Destination and reply options, to send the same request again after a refresh. */
  dest?: string
  replyOptions?: object
  replayed: boolean
}

/** When the proxied request left for the upstream (`performance.now()`), for its latency metric. */
const upstreamStarted = new WeakMap<FastifyRequest, number>()

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
export function challengeError (header: string | string[] | undefined): 'invalid_token' | 'use_dpop_nonce' | undefined {
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

/** The `Authorization` (and `DPoP`) headers for the upstream; none without a token. */
function upstreamCredentials (state: ProxyState | null): { authorization?: string; dpop?: string } {
  if (state === null) return {}
  return {
    authorization: `${isDpopToken(state.token) ? 'DPoP' : 'Bearer'} ${state.token.access_token}`,
    ...(state.dpopProof !== null && { dpop: state.dpopProof }),
  }
}

/** Browser headers that never reach an upstream. */
const STRIPPED_REQUEST_HEADERS = ['cookie', 'authorization', 'x-csrf', 'dpop', 'proxy-authorization']

/**
 * One @fastify/http-proxy registration per configured route: only configured upstreams are
 * reachable (http-proxy refuses absolute URLs and `..` traversal out of the prefix). Bodies
 * stream both ways. API routes never redirect: a missing or ended session is a JSON 401.
 */
export function registerProxyRoutes (app: FastifyInstance, routes: readonly RouteConfig[], webSockets: WebSocketSessions): void {
  app.decorateRequest('proxyState', null)
  /** The latest `DPoP-Nonce` each upstream origin handed out (RFC 9449 §9). */
  const dpopNonces = new Map<string, string>()
  const { publicUrl, session: { cookieName } } = app.bff.config
  const publicHost = new URL(publicUrl).host
  const publicProto = new URL(publicUrl).protocol.slice(0, -1)
  const upstreamTimeoutMs = app.bff.config.upstreamTimeoutSeconds * 1000

  for (const route of routes) {
    // A DPoP route under bearer-by-default needs a token of its own, bound to the session's key.
    const ownDpopToken = route.dpop && !app.bff.config.oidc.dpop
    const tokenRequest: TokenRequest = {
      tokenKey: `${tokenKeyFor(route)}${ownDpopToken ? '#dpop' : ''}`,
      dpop: route.dpop || app.bff.config.oidc.dpop,
      ...(route.audience !== undefined && { audience: route.audience }),
      ...(route.scope !== undefined && { scope: route.scope }),
    }

    /** The URL the upstream sees for this request (a DPoP proof's `htu`). */
    const upstreamUrlOf = (request: FastifyRequest): string => {
      const path = request.url.split('?', 1)[0]!.slice(route.path.length)
      return `${route.upstream}${route.rewritePrefix}${path.startsWith('/') || path === '' ? path : `/${path}`}`
    }

    /** Signs a fresh DPoP proof for this request when its token is DPoP-bound. */
    const proveToken = async (request: FastifyRequest, state: ProxyState): Promise<void> => {
      const key = state.session.record.dpop_key
      state.dpopProof = isDpopToken(state.token) && key !== undefined
        ? await createDpopProof(key, { method: request.method, url: upstreamUrlOf(request), accessToken: state.token.access_token, nonce: dpopNonces.get(route.upstream) })
        : null
    }

    /**
     * One replay, for a request without a body: after a 401 `invalid_token` with a new token
     * from one exchange (shared, as always), or after a 401 `use_dpop_nonce` with a new proof.
     */
    const replay = async (request: FastifyRequest, reply: FastifyReply, state: ProxyState, upstreamHeaders: IncomingHttpHeaders, why: 'invalid_token' | 'use_dpop_nonce') => {
      for (const name of Object.keys(upstreamHeaders)) reply.removeHeader(name)
      if (why === 'invalid_token') {
        const result = await app.bff.tokens.getAccessToken(state.session, { ...state.tokenRequest, rejectedToken: state.token.access_token })
        if (result.kind === 'error') {
          if (result.sessionEnded) clearSessionCookie(reply)
          request.log.info({ event: 'proxy.replay_failed', code: result.error.code }, 'no new token after the upstream refused one')
          return sendError(reply, result.error)
        }
        state.token = result.token
      }
      await proveToken(request, state)
      request.log.info({ event: 'proxy.replayed', reason: why }, 'upstream refused the request: replayed once')
      return reply.from(state.dest, state.replyOptions)
    }

    const observeUpstream = (request: FastifyRequest, statusCode: number) => {
      const started = upstreamStarted.get(request)
      if (started !== undefined) app.bff.metrics.upstreamResponse(route.path, statusCode, (performance.now() - started) / 1000)
    }

    const httpOptions = {
      upstream: route.upstream,
      // reply-from would log two info lines per proxied request; fastify's own request log suffices.
      disableRequestLogging: true,
      // A slow upstream answers 504 after this long without response headers (undici's default is 300 s).
      undici: { headersTimeout: upstreamTimeoutMs },
      prefix: route.path,
      rewritePrefix: route.rewritePrefix,
      // Redirects from the upstream pass through untouched rather than being re-prefixed.
      internalRewriteLocationHeader: false,
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
        const upgrade = isWebSocketUpgrade(request)
        // A WebSocket handshake cannot carry the CSRF header: its Origin must be ours instead.
        if (upgrade) guardWebSocketOrigin(request)
        else await guardCsrf(request, reply)
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
        request.proxyState = { session, tokenRequest, token: result.token, dpopProof: null, replayed: false }
        await proveToken(request, request.proxyState)
        if (upgrade) webSockets.expect(request.raw.socket as Socket, session)
      },
      handler (request, reply, dest, replyOptions) {
        upstreamStarted.set(request, performance.now())
        if (request.proxyState !== null) {
          request.proxyState.dest = dest
          request.proxyState.replyOptions = replyOptions
        }
        return reply.from(dest, replyOptions)
      },
      replyOptions: {
        rewriteRequestHeaders (request, headers) {
          const out: IncomingHttpHeaders = { ...headers }
          for (const name of STRIPPED_REQUEST_HEADERS) delete out[name]
          Object.assign(out, upstreamCredentials(request.proxyState))
          // The same id as in our logs (echoed to the caller too), so upstream logs correlate.
          out['x-request-id'] = request.id
          const forwardedFor = headers['x-forwarded-for']
          out['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${request.ip}` : request.ip
          out['x-forwarded-host'] = publicHost
          out['x-forwarded-proto'] = publicProto
          return out
        },
        rewriteHeaders (headers) {
          // An upstream must not set (or overwrite) bffgate's own cookies on the app's origin.
          const cookies = headers['set-cookie']
          if (cookies === undefined) return headers
          const kept = cookies.filter((c) => !c.startsWith(`${cookieName}=`) && !isLoginStateCookie(c))
          return { ...headers, 'set-cookie': kept }
        },
        onResponse (rawRequest, rawReply, res) {
          const request = rawRequest as FastifyRequest
          const reply = rawReply as FastifyReply
          // http/1.1 upstreams only: the response carries its status and headers.
          const upstream = res as unknown as { statusCode: number; headers: IncomingHttpHeaders; stream: NodeJS.ReadableStream }
          observeUpstream(request, upstream.statusCode)
          const nonce = upstream.headers['dpop-nonce']
          if (typeof nonce === 'string' && nonce !== '') dpopNonces.set(route.upstream, nonce)
          const state = request.proxyState
          const why = state !== null && !state.replayed && upstream.statusCode === 401 && isReplayable(request)
            ? challengeError(upstream.headers['www-authenticate'])
            : undefined
          if (state !== null && (why === 'invalid_token' || (why === 'use_dpop_nonce' && isDpopToken(state.token)))) {
            state.replayed = true
            upstream.stream.resume() // discard the refusal's body
            replay(request, reply, state, upstream.headers, why).catch((err: unknown) => {
              request.log.error({ event: 'proxy.replay_error', err }, 'replay failed')
              if (!reply.sent) sendError(reply, new BffError('BFF_ERR_INTERNAL'))
            })
            return
          }
          reply.send(upstream.stream)
        },
        onError (reply, { error }) {
          reply.request.log.warn({ event: 'upstream.failed', upstream: route.upstream, err: error }, 'upstream request failed')
          const timedOut = (error as { statusCode?: number }).statusCode === 504
          observeUpstream(reply.request as FastifyRequest, timedOut ? 504 : 502)
          if (reply.sent) return
          sendError(reply as FastifyReply, new BffError(timedOut ? 'BFF_ERR_UPSTREAM_TIMEOUT' : 'BFF_ERR_UPSTREAM_UNREACHABLE'))
        },
      },
    } satisfies FastifyHttpProxyOptions
    const webSocketOptions = route.websocket
      ? {
          websocket: true as const,
          wsClientOptions: {
            // The upstream handshake carries the access token, never the browser's cookies.
            rewriteRequestHeaders: (headers: object, request: FastifyRequest) => ({
              ...headers,
              ...upstreamCredentials(request.proxyState),
            }),
          },
          wsHooks: { onConnect: (_context: unknown, source: ClosableSocket) => webSockets.opened(source) },
        }
      : {}
    // The plugin's option types are a union on `websocket`; each half is checked above.
    app.register(proxy, { ...httpOptions, ...webSocketOptions } as never)
  }
}
