import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { BffError } from '../errors.ts'
import { loginErrorLocation } from './error-location.ts'
import { isNavigation } from '../spa/policy.ts'
import { OidcError } from '../oidc/client.ts'

/**
 * Route error handler of `/bff/login` and `/bff/callback`: a browser that navigated there is
 * sent to the SPA's login error page (`BFF_LOGIN_ERROR_PATH`) with bffgate's error code in
 * the query, never left on raw JSON; a programmatic caller (`fetch`, tests, curl) gets the
 * JSON error from the app's error handler, as everywhere else.
 */
export function loginErrorHandler(
  errorPath: string,
): (err: FastifyError | BffError, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (err, request, reply) => {
    if (!isNavigation(request.headers)) throw err
    const known = err instanceof BffError ? err : new BffError('BFF_ERR_INTERNAL', { cause: err })
    // An expected 4xx is the access line's `code`; its details (without a stack) only at debug.
    const level = known.statusCode >= 500 ? 'error' : 'debug'
    request.log[level]({ event: 'login.error_page', code: known.code, err: known.cause ?? known }, known.message)
    const oauthError = known.cause instanceof OidcError ? known.cause.oauthError : undefined
    return reply
      .header('cache-control', 'no-store')
      .redirect(loginErrorLocation(errorPath, known.error, oauthError), 303)
  }
}
