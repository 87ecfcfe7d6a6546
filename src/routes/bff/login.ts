import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../../config/types.ts'
import { safeReturnTo } from '../../gateway/return-to.ts'
import { BffError } from '../../errors.ts'
import { pickLoginParameters } from '../../gateway/login-parameters.ts'
import { OidcError } from '../../oidc/client.ts'
import { loginErrorHandler } from '../../plugins/login-errors.ts'
import { createDpopKey } from '../../oidc/dpop.ts'
import { LOGIN_STATE_TTL_SECONDS, MAX_PENDING_LOGINS, expiredCookieOptions, isLoginStateCookie, loginStateCookieName, loginStateCookieOptions } from '../../session/cookie.ts'
import { openLoginState, sealLoginState } from '../../session/login-state.ts'

/**
 * `GET /bff/login?returnTo=/path`: starts the authorization code flow with PKCE (S256),
 * state and nonce, kept in an encrypted login-state cookie bound to this browser.
 */
export function registerLoginRoute (app: FastifyInstance): void {
  app.get<{ Querystring: Record<string, unknown> }>('/bff/login', { errorHandler: loginErrorHandler }, async (request, reply) => {
    const { oidc, keyring, config } = app.bff
    // Login options (prompt, login_hint, organization ...): allowlisted and checked; others dropped.
    const options = pickLoginParameters(request.query, config.login.parameters)
    if (!options.ok) throw new BffError('BFF_ERR_LOGIN_PARAMETER_INVALID', { message: `The login parameter "${options.invalid}" is repeated, empty or malformed` })
    if (options.dropped.length > 0) request.log.info({ event: 'login.parameters_dropped', names: options.dropped }, 'login parameters outside BFF_LOGIN_PARAMETERS dropped')
    const checks = oidc.createLoginChecks()
    const returnTo = safeReturnTo(request.query.returnTo, config.publicUrl)
    // The session's DPoP key is made now: with global DPoP the code is bound to it (`dpop_jkt`).
    const dpop = usesDpop(config) ? await createDpopKey() : undefined
    const cookie = sealLoginState(keyring, { ...checks, returnTo, expiresAt: Math.floor(Date.now() / 1000) + LOGIN_STATE_TTL_SECONDS, ...(dpop !== undefined && { dpop }) })
    let url: URL
    try {
      url = await oidc.buildLoginUrl(checks, { parameters: options.parameters, ...(config.oidc.dpop && dpop !== undefined && { dpop }) })
    } catch (err) {
      // Only a pushed authorization request talks to the IdP here.
      request.log.warn({ event: 'login.par_failed', err }, 'pushed authorization request failed')
      throw new BffError(err instanceof OidcError && err.kind === 'transient' ? 'BFF_ERR_IDP_UNREACHABLE' : 'BFF_ERR_IDP_RESPONSE_INVALID', { cause: err })
    }
    request.log.info({ event: 'login.started' }, 'login started')
    dropOldLoginAttempts(request, reply)
    return reply
      .setCookie(loginStateCookieName(checks.state), cookie, loginStateCookieOptions())
      .redirect(url.href, 302)
  })
}

/** Keeps the number of pending login cookies bounded: the oldest (or unreadable) ones go. */
function dropOldLoginAttempts (request: FastifyRequest, reply: FastifyReply): void {
  const nowSeconds = Math.floor(Date.now() / 1000)
  const pending = Object.entries(request.cookies)
    .filter(([name]) => isLoginStateCookie(name))
    .map(([name, value]) => ({ name, expiresAt: openLoginState(request.server.bff.keyring, value, nowSeconds)?.expiresAt ?? 0 }))
    .sort((a, b) => b.expiresAt - a.expiresAt)
  for (const [i, { name, expiresAt }] of pending.entries()) {
    if (i >= MAX_PENDING_LOGINS - 1 || expiresAt === 0) reply.setCookie(name, '', expiredCookieOptions('lax'))
  }
}

/** Whether sessions need a DPoP key: DPoP for everything, or for at least one route. */
function usesDpop (config: Config): boolean {
  return config.oidc.dpop || config.routes.some((route) => route.dpop)
}
