import proxy from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../config/types.ts'
import { BffError } from '../errors.ts'
import { guardCsrf } from '../plugins/csrf.ts'
import { sendError } from '../plugins/error-handler.ts'
import { clearSessionCookie, hasSessionCookie, loadRequestSession } from '../plugins/session.ts'
import { LOGIN_STATE_COOKIE } from '../session/cookie.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** `Authorization` value for the upstream, set by the proxy preHandler. */
    upstreamAuthorization: string | null
  }
}

/** Browser headers that never reach an upstream. */
const STRIPPED_REQUEST_HEADERS = ['cookie', 'authorization', 'x-csrf', 'dpop', 'proxy-authorization']

/**
 * One @fastify/http-proxy registration per configured route: only configured upstreams are
 * reachable (http-proxy refuses absolute URLs and `..` traversal out of the prefix). Bodies
 * stream both ways. API routes never redirect: a missing or ended session is a JSON 401.
 */
export function registerProxyRoutes (app: FastifyInstance, routes: readonly RouteConfig[]): void {
  app.decorateRequest('upstreamAuthorization', null)
  const { publicUrl, session: { cookieName } } = app.bff.config
  const publicHost = new URL(publicUrl).host
  const publicProto = new URL(publicUrl).protocol.slice(0, -1)

  for (const route of routes) {
    app.register(proxy, {
      upstream: route.upstream,
      prefix: route.path,
      rewritePrefix: route.rewritePrefix,
      // Redirects from the upstream pass through untouched rather than being re-prefixed.
      internalRewriteLocationHeader: false,
      preHandler: async (request: FastifyRequest, reply: FastifyReply) => {
        await guardCsrf(request, reply)
        if (route.token === 'none') return
        const session = await loadRequestSession(request, { slide: true })
        if (session === undefined) {
          if (route.token === 'optional') return
          if (hasSessionCookie(request)) {
            clearSessionCookie(reply)
            throw new BffError('BFF_ERR_SESSION_ENDED')
          }
          throw new BffError('BFF_ERR_SESSION_REQUIRED')
        }
        const result = await app.bff.tokens.getAccessToken(session)
        if (result.kind === 'error') {
          if (result.sessionEnded) clearSessionCookie(reply)
          throw result.error
        }
        request.upstreamAuthorization = `${result.token.token_type.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer'} ${result.token.access_token}`
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
        onError (reply, { error }) {
          reply.request.log.warn({ event: 'upstream.failed', upstream: route.upstream, err: error }, 'upstream request failed')
          if (reply.sent) return
          sendError(reply as FastifyReply, new BffError((error as { statusCode?: number }).statusCode === 504 ? 'BFF_ERR_UPSTREAM_TIMEOUT' : 'BFF_ERR_UPSTREAM_UNREACHABLE'))
        },
      },
    })
  }
}
