import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/types.ts'
import type { RequestSessions } from '../http/request-session.ts'
import type { OidcClient } from '../oidc/client.ts'
import type { Keyring } from '../session/keyring.ts'
import type { SessionStore } from '../session/types.ts'
import { BffError } from '../errors.ts'
import { createDpopKey } from '../dpop.ts'
import { bffErrorForOidcFailure } from '../oidc/failures.ts'
import { TICKET_LENGTH } from '../session/ticket.ts'
import { loginErrorHandler } from './error-page.ts'
import { pickLoginParameters } from './parameters.ts'
import { safeReturnTo } from './return-to.ts'
import { beginLoginAttempt, LOGIN_STATE_TTL_SECONDS, MAX_LOGIN_COOKIE_LENGTH, sealLoginAttempt } from './transaction.ts'

/** A `returnTo` longer than this is refused outright (it could never fit the login cookie). */
const MAX_RETURN_TO_LENGTH = MAX_LOGIN_COOKIE_LENGTH

/**
 * `GET /bff/login?returnTo=/path`: starts the authorization code flow with PKCE (S256),
 * state and nonce, kept in an encrypted login-state cookie bound to this browser.
 */
/** What `/bff/login` and `/bff/callback` work with, handed in by app.ts. */
export interface LoginDependencies {
  readonly config: Pick<Config, 'publicUrl' | 'session' | 'login' | 'oidc' | 'routes'>
  readonly oidc: OidcClient
  readonly keyring: Keyring
  readonly store: SessionStore
  readonly sessions: RequestSessions
  /** Epoch milliseconds. */
  readonly now: () => number
  /**
   * The frontend these endpoints serve (docs/frontends.md): its name binds the login attempt
   * and the session to it; its path prefix mounts `/bff/login` and `/bff/callback`.
   */
  readonly frontend: { readonly name: string; readonly pathPrefix: string }
}

export function registerLoginRoute(app: FastifyInstance, deps: LoginDependencies): void {
  app.get<{ Querystring: Record<string, unknown> }>(
    `${deps.frontend.pathPrefix}/bff/login`,
    { errorHandler: loginErrorHandler(deps.config.login.errorPath) },
    async (request, reply) => {
      const { config } = deps
      const raw = request.query.returnTo
      if (typeof raw === 'string' && raw.length > MAX_RETURN_TO_LENGTH)
        throw new BffError('BFF_ERR_LOGIN_RETURN_TO_TOO_LONG')
      // Login options (prompt, login_hint, organization ...): allowlisted and checked; others dropped.
      const options = pickLoginParameters(request.query, config.login.parameters)
      if (!options.ok)
        throw new BffError('BFF_ERR_LOGIN_PARAMETER_INVALID', {
          message: `The login parameter "${options.invalid}" is repeated, empty or malformed`,
        })
      if (options.dropped.length > 0)
        request.log.info(
          { event: 'login.parameters_dropped', names: options.dropped },
          'login parameters outside BFF_LOGIN_PARAMETERS dropped',
        )
      // The SameSite=Strict session cookie is sent here (a same-site navigation from the SPA) but
      // not on the IdP's redirect to the callback: remember it, so the callback can end that session.
      const current = request.cookies[config.session.cookieName]
      const previousSession = current !== undefined && current.length === TICKET_LENGTH ? current : undefined
      return startLogin(deps, request, reply, {
        returnTo: safeReturnTo(raw, config.publicUrl, `${deps.frontend.pathPrefix}/`),
        ...(Object.keys(options.parameters).length > 0 && { parameters: options.parameters }),
        ...(previousSession !== undefined && { previousSession }),
      })
    },
  )
}

/**
 * Sends the browser to the IdP's authorization endpoint with a new login attempt. Always with
 * `max_age` = the session's absolute lifetime (OIDC Core §3.1.2.1): an IdP session older than
 * that would only give a session that is over at once. With `reauthenticate`, also
 * `prompt=login` (the callback's one retry when the IdP ignored `max_age`).
 */
export async function startLogin(
  deps: LoginDependencies,
  request: FastifyRequest,
  reply: FastifyReply,
  attempt: {
    returnTo: string
    parameters?: Readonly<Record<string, string>>
    previousSession?: string
    reauthenticate?: true
  },
): Promise<FastifyReply> {
  const { oidc, keyring, config } = deps
  const nowSeconds = Math.floor(deps.now() / 1000)
  const checks = oidc.createLoginChecks()
  // The session's DPoP key is made now: with global DPoP the code is bound to it (`dpop_jkt`).
  const dpop = usesDpop(config) ? await createDpopKey() : undefined
  const state = {
    ...checks,
    ...attempt,
    frontend: deps.frontend.name,
    expiresAt: nowSeconds + LOGIN_STATE_TTL_SECONDS,
    ...(dpop !== undefined && { dpop }),
  }
  const cookie = sealLoginAttempt(keyring, state)
  if (cookie === undefined) {
    request.log.debug(
      {
        event: 'login.return_to_too_long',
        returnToLength: attempt.returnTo.length,
        parameters: Object.keys(attempt.parameters ?? {}),
      },
      'returnTo and the login options do not fit the login cookie',
    )
    throw new BffError(
      'BFF_ERR_LOGIN_RETURN_TO_TOO_LONG',
      attempt.parameters === undefined
        ? {}
        : {
            message:
              'returnTo and the login options together are too long to be carried through the login: shorten them',
          },
    )
  }
  let url: URL
  try {
    url = await oidc.buildLoginUrl(checks, {
      ...(config.oidc.dpop && dpop !== undefined && { dpop }),
      ...(attempt.parameters !== undefined && { parameters: attempt.parameters }),
      maxAgeSeconds: config.session.absoluteSeconds,
      ...(attempt.reauthenticate === true && { prompt: 'login' as const }),
    })
  } catch (err) {
    // Only a pushed authorization request talks to the IdP here.
    request.log.warn({ event: 'login.par_failed', err }, 'pushed authorization request failed')
    throw bffErrorForOidcFailure(err, 'authorization')
  }
  request.log.info({ event: 'login.started', reauthenticate: attempt.reauthenticate === true }, 'login started')
  beginLoginAttempt(request, reply, keyring, state, cookie, Math.floor(deps.now() / 1000))
  return reply.redirect(url.href, 302)
}

/** Whether sessions need a DPoP key: DPoP for everything, or for at least one route. */
function usesDpop(config: LoginDependencies['config']): boolean {
  return config.oidc.dpop || config.routes.some((route) => route.dpop)
}
