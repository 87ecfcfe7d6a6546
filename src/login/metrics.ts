import type { FastifyInstance, FastifyReply } from 'fastify'
import { BffError, type ErrorCode } from '../errors.ts'
import type { GatewayMetrics, LoginOutcome } from '../metrics.ts'

const OUTCOME_BY_ERROR: Partial<Record<ErrorCode, LoginOutcome>> = {
  BFF_ERR_LOGIN_STATE_INVALID: 'state_invalid',
  BFF_ERR_LOGIN_FAILED: 'rejected',
  BFF_ERR_IDP_UNREACHABLE: 'idp_unreachable',
  BFF_ERR_IDP_RESPONSE_INVALID: 'idp_response_invalid',
}

/**
 * Counts how each login ends at `/bff/callback` (`bff_logins_total`), from the outside of the
 * route: a redirect that sets the session cookie is a success; a failure is named by the error
 * the route threw. Not counted: the callback's one re-authentication retry (a redirect back to
 * the IdP, whose own callback is counted) and a request the rate limits refused before the
 * route ran (`bff_rate_limited_total` counts those).
 */
export function registerLoginMetrics(
  app: FastifyInstance,
  deps: {
    /** Every frontend's session cookie name. */
    readonly cookieNames: readonly string[]
    /** Every frontend's callback path (`/bff/callback` under its prefix). */
    readonly callbackPaths: readonly string[]
    readonly metrics: Pick<GatewayMetrics, 'login'>
  },
): void {
  const failures = new WeakMap<object, LoginOutcome>()
  const sessionCookies = deps.cookieNames.map((name) => `${name}=`)
  const callbacks = new Set(deps.callbackPaths)
  const setsSession = (cookies: ReturnType<FastifyReply['getHeader']>): boolean =>
    (Array.isArray(cookies) ? cookies : [String(cookies ?? '')]).some((cookie) =>
      sessionCookies.some(
        (sessionCookie) => cookie.startsWith(sessionCookie) && !cookie.startsWith(`${sessionCookie};`),
      ),
    )
  app.addHook('onError', (request, _reply, err, done) => {
    if (callbacks.has(request.routeOptions.url ?? ''))
      failures.set(request, err instanceof BffError ? (OUTCOME_BY_ERROR[err.code] ?? 'error') : 'error')
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    if (callbacks.has(request.routeOptions.url ?? '') && reply.statusCode !== 429) {
      const failure = failures.get(request)
      if (failure !== undefined) deps.metrics.login(failure)
      else if (reply.statusCode >= 400) deps.metrics.login('error')
      else if (setsSession(reply.getHeader('set-cookie'))) deps.metrics.login('success')
    }
    done()
  })
}
