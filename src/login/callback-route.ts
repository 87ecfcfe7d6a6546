import type { FastifyInstance } from 'fastify'
import { BffError } from '../errors.ts'
import { OidcError } from '../oidc/client.ts'
import { bffErrorForOidcFailure } from '../oidc/failures.ts'
import { newSessionRecord } from '../tokens/session-record.ts'
import { loginErrorHandler } from './error-page.ts'
import { startLogin, type LoginDependencies } from './login-route.ts'
import { finishLoginAttempt } from './transaction.ts'

/**
 * `GET /bff/callback`: finishes the login. The login state must come from this browser's
 * login cookie, match the `state` parameter and never have been used before; then the code
 * is redeemed (PKCE verifier, nonce and ID-token signature checked) and a brand-new session
 * is created, never reusing an earlier id.
 */
export function registerCallbackRoute(app: FastifyInstance, deps: LoginDependencies): void {
  // A failure sends a navigating browser to the SPA's login error page (loginErrorHandler).
  app.get<{ Querystring: Record<string, unknown> }>(
    `${deps.frontend.pathPrefix}/bff/callback`,
    { errorHandler: loginErrorHandler(deps.config.login.errorPath) },
    async (request, reply) => {
      const { oidc, keyring, config, store, sessions } = deps
      const nowSeconds = Math.floor(deps.now() / 1000)
      const login = await finishLoginAttempt(request, reply, { keyring, store, nowSeconds })
      // A login started for another frontend is not finished here (its code is another client's).
      if (login.frontend !== undefined && login.frontend !== deps.frontend.name) {
        request.log.warn(
          { event: 'login.state_invalid', reason: 'other_frontend' },
          'callback for a login another frontend started',
        )
        throw new BffError('BFF_ERR_LOGIN_STATE_INVALID')
      }

      // An answer without a code (and without an OAuth error) is a malformed callback, not an IdP failure.
      if (request.query.error === undefined && (typeof request.query.code !== 'string' || request.query.code === '')) {
        request.log.warn({ event: 'login.failed', kind: 'no_code' }, 'callback without an authorization code')
        throw new BffError('BFF_ERR_LOGIN_FAILED', { message: 'The callback carries no authorization code' })
      }

      let tokens
      try {
        tokens = await oidc.exchangeAuthorizationCode(
          new URL(request.url, config.publicUrl),
          login,
          config.oidc.dpop && login.dpop !== undefined ? { dpop: login.dpop } : {},
        )
      } catch (err) {
        const oauthError = err instanceof OidcError ? err.oauthError : undefined
        request.log.warn(
          { event: 'login.failed', kind: err instanceof OidcError ? err.kind : 'unknown', oauthError, err },
          'login failed',
        )
        throw bffErrorForOidcFailure(err, 'code_exchange')
      }

      const { claims } = tokens
      const authTime =
        typeof claims.auth_time === 'number' && claims.auth_time <= nowSeconds ? claims.auth_time : nowSeconds
      if (authTime + config.session.absoluteSeconds <= nowSeconds) {
        // Single sign-on repeated an authentication older than the session's absolute lifetime
        // (the IdP ignored max_age): such a session would be over at once. Ask once more, with
        // prompt=login; if the IdP still answers with the old authentication, say so (no loop).
        if (login.reauthenticate !== true) {
          request.log.info(
            { event: 'login.reauthenticate' },
            'the IdP session is older than the absolute lifetime: asking for a fresh authentication',
          )
          return startLogin(deps, request, reply, {
            returnTo: login.returnTo,
            ...(login.parameters !== undefined && { parameters: login.parameters }),
            ...(login.previousSession !== undefined && { previousSession: login.previousSession }),
            reauthenticate: true,
          })
        }
        request.log.warn({ event: 'login.failed', kind: 'stale_authentication' }, 'the IdP did not authenticate afresh')
        throw new BffError('BFF_ERR_LOGIN_FAILED', {
          message:
            'The identity provider did not authenticate you afresh; sign out at the identity provider and log in again',
        })
      }
      const record = newSessionRecord({
        issuer: oidc.issuer,
        tokens,
        authTime,
        absoluteSeconds: config.session.absoluteSeconds,
        nowSeconds,
        dpopKey: login.dpop,
        frontend: deps.frontend.name,
      })

      if (record.absolute_expires_at <= nowSeconds) {
        request.log.warn(
          { event: 'login.failed', kind: 'session_expiry_passed' },
          'the ID token declares a session_expiry already passed',
        )
        throw new BffError('BFF_ERR_LOGIN_FAILED', {
          message: 'The identity provider declared a session that has already ended (session_expiry): log in again',
        })
      }

      // A login always gets a new session; one the browser may already hold is ended: the one
      // whose cookie came with this request (rare: the Strict cookie stays home on the IdP's
      // cross-site redirect) and the one it sent to /bff/login, remembered in the login state.
      const previous = [
        await sessions.load(request, { slide: false }),
        login.previousSession !== undefined
          ? await store.load(login.previousSession, { slide: false, frontend: deps.frontend.name })
          : undefined,
      ]
      for (const session of previous) if (session !== undefined) await store.delete(session.handle, 'replaced')
      if (previous.some((session) => session !== undefined))
        request.log.info({ event: 'login.replaced_session' }, 'a new login ended the session this browser had')

      const { cookieValue } = await store.create(record)
      sessions.setCookie(reply, cookieValue, record.absolute_expires_at - nowSeconds)
      request.log.info(
        { event: 'login.succeeded', refreshToken: tokens.refresh_token !== undefined },
        'login succeeded',
      )
      return reply.redirect(login.returnTo, 302)
    },
  )
}
