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
import { LOGIN_STATE_COOKIE } from '../session/cookie.ts'
import type { LoadedSession, StoredAccessToken } from '../session/types.ts'
import { tokenKeyFor } from '../tokens/refresh-policy.ts'
import type { TokenRequest } from '../tokens/token-manager.ts'

/** What the proxy preHandler learned, kept for the header rewrite and a possible replay. */
interface ProxyState {
  session: LoadedSession
  tokenRequest: TokenRequest
  /** The access token sent upstream. */
  token: StoredAccessToken
  /** Destination and reply options, to send the same request again after a refresh. */
  dest?: string
  replyOptions?: object
  replayed: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** `Authorization` value for the upstream, set by the proxy preHandler. */
    upstreamAuthorization: string | null
    proxyState: ProxyState | null
  }
}

const REPLAYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE'])

/** True when the upstream refused the token itself (RFC 6750 §3.1), not the caller's rights. */
export function isInvalidTokenChallenge (header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(', ') : header
  return value !== undefined && /^\s*(bearer|dpop)\b/i.test(value) && /\berror\s*=\s*"?invalid_token"?/i.test(value)
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

function authorizationFor (token: StoredAccessToken): string {
  return `${token.token_type.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer'} ${token.access_token}`
}

/** Browser headers that never reach an upstream. */
const STRIPPED_REQUEST_HEADERS = ['cookie', 'authorization', 'x-csrf', 'dpop', 'proxy-authorization']

/**
 * One @fastify/http-proxy registration per configured route: only configured upstreams are
 * reachable (http-proxy refuses absolute URLs and `..` traversal out of the prefix). Bodies
 * stream both ways. API routes never redirect: a missing or ended session is a JSON 401.
 */
export function registerProxyRoutes (app: FastifyInstance, routes: readonly RouteConfig[], webSockets: WebSocketSessions): void {
  app.decorateRequest('upstreamAuthorization', null)
  app.decorateRequest('proxyState', null)
  const { publicUrl, session: { cookieName } } = app.bff.config
  const publicHost = new URL(publicUrl).host
  const publicProto = new URL(publicUrl).protocol.slice(0, -1)

  for (const route of routes) {
    const tokenRequest: TokenRequest = {
      tokenKey: tokenKeyFor(route),
      ...(route.audience !== undefined && { audience: route.audience }),
      ...(route.scope !== undefined && { scope: route.scope }),
    }

    /** After an upstream 401 `invalid_token`: one exchange (shared, as always) and one replay. */
    const replay = async (request: FastifyRequest, reply: FastifyReply, state: ProxyState, upstreamHeaders: IncomingHttpHeaders) => {
      for (const name of Object.keys(upstreamHeaders)) reply.removeHeader(name)
      const result = await app.bff.tokens.getAccessToken(state.session, { ...state.tokenRequest, rejectedToken: state.token.access_token })
      if (result.kind === 'error') {
        if (result.sessionEnded) clearSessionCookie(reply)
        request.log.info({ event: 'proxy.replay_failed', code: result.error.code }, 'no new token after the upstream refused one')
        return sendError(reply, result.error)
      }
      state.token = result.token
      request.upstreamAuthorization = authorizationFor(result.token)
      request.log.info({ event: 'proxy.replayed' }, 'upstream refused the token: refreshed and replayed once')
      return reply.from(state.dest, state.replyOptions)
    }

    const httpOptions = {
      upstream: route.upstream,
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
        request.upstreamAuthorization = authorizationFor(result.token)
        request.proxyState = { session, tokenRequest, token: result.token, replayed: false }
        if (upgrade) webSockets.expect(request.raw.socket as Socket, session)
      },
      handler (request, reply, dest, replyOptions) {
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
          if (request.upstreamAuthorization !== null) out.authorization = request.upstreamAuthorization
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
          const kept = cookies.filter((c) => !c.startsWith(`${cookieName}=`) && !c.startsWith(`${LOGIN_STATE_COOKIE}=`))
          return { ...headers, 'set-cookie': kept }
        },
        onResponse (rawRequest, rawReply, res) {
          const request = rawRequest as FastifyRequest
          const reply = rawReply as FastifyReply
          // http/1.1 upstreams only: the response carries its status and headers.
          const upstream = res as unknown as { statusCode: number; headers: IncomingHttpHeaders; stream: NodeJS.ReadableStream }
          const state = request.proxyState
          if (state !== null && !state.replayed && upstream.statusCode === 401 && isInvalidTokenChallenge(upstream.headers['www-authenticate']) && isReplayable(request)) {
            state.replayed = true
            upstream.stream.resume() // discard the refusal's body
            replay(request, reply, state, upstream.headers).catch((err: unknown) => {
              request.log.error({ event: 'proxy.replay_error', err }, 'replay failed')
              if (!reply.sent) sendError(reply, new BffError('BFF_ERR_INTERNAL'))
            })
            return
          }
          reply.send(upstream.stream)
        },
        onError (reply, { error }) {
          reply.request.log.warn({ event: 'upstream.failed', upstream: route.upstream, err: error }, 'upstream request failed')
          if (reply.sent) return
          sendError(reply as FastifyReply, new BffError((error as { statusCode?: number }).statusCode === 504 ? 'BFF_ERR_UPSTREAM_TIMEOUT' : 'BFF_ERR_UPSTREAM_UNREACHABLE'))
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
              ...(request.upstreamAuthorization !== null && { authorization: request.upstreamAuthorization }),
            }),
          },
          wsHooks: { onConnect: (_context: unknown, source: ClosableSocket) => webSockets.opened(source) },
        }
      : {}
    // The plugin's option types are a union on `websocket`; each half is checked above.
    app.register(proxy, { ...httpOptions, ...webSocketOptions } as never)
  }
}
