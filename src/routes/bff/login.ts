import type { FastifyInstance } from 'fastify'
import { safeReturnTo } from '../../gateway/return-to.ts'
import { LOGIN_STATE_COOKIE, LOGIN_STATE_TTL_SECONDS, loginStateCookieOptions } from '../../session/cookie.ts'
import { sealLoginState } from '../../session/login-state.ts'

/**
 * `GET /bff/login?returnTo=/path`: starts the authorization code flow with PKCE (S256),
 * state and nonce, kept in an encrypted login-state cookie bound to this browser.
 */
export function registerLoginRoute (app: FastifyInstance): void {
  app.get<{ Querystring: { returnTo?: unknown } }>('/bff/login', async (request, reply) => {
    const { oidc, keyring, config } = app.bff
    const checks = oidc.createLoginChecks()
    const returnTo = safeReturnTo(request.query.returnTo, config.publicUrl)
    const cookie = sealLoginState(keyring, { ...checks, returnTo, expiresAt: Math.floor(Date.now() / 1000) + LOGIN_STATE_TTL_SECONDS })
    const url = await oidc.buildLoginUrl(checks)
    request.log.info({ event: 'login.started' }, 'login started')
    return reply
      .setCookie(LOGIN_STATE_COOKIE, cookie, loginStateCookieOptions())
      .header('cache-control', 'no-store')
      .redirect(url.href, 302)
  })
}
