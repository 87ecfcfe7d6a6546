import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../../config/types.ts'
import { BffError } from '../../errors.ts'
import { guardCsrf } from '../../http/csrf.ts'
import type { RequestSessions } from '../../http/request-session.ts'
import type { OidcClient } from '../../oidc/client.ts'
import type { SessionEnding } from '../../session/ending.ts'
import { constantTimeEqual } from '../../crypto.ts'
import { logoutIdOf } from '../../session/logout-id.ts'
import type { LoadedSession } from '../../session/types.ts'

/**
 * Logout, without any token reaching the browser (RFC 10017: the ID token stays in the BFF).
 *
 * - `GET /bff/logout?sid=<logoutId>`, the URL `/bff/user` gives as `logoutUrl`: the SPA
 *   navigates there; bffgate ends the session (and every session sharing its IdP session),
 *   clears the cookie and redirects to the IdP's end-session endpoint with `id_token_hint`,
 *   `post_logout_redirect_uri` and `client_id` (RP-Initiated Logout 1.0). The `sid` binds the
 *   link to the session, so a cross-site page cannot log the user out (and the SameSite=Strict
 *   cookie is not even sent on its navigation).
 * - `POST /bff/logout` (CSRF header required), for SPAs written before: ends the session the
 *   same way and answers `{ logoutUrl }`, the end-session URL without `id_token_hint`.
 */
export interface LogoutDependencies {
  readonly config: Pick<Config, 'publicUrl' | 'oidc'>
  readonly oidc: Pick<OidcClient, 'buildEndSessionUrl' | 'revokeRefreshToken'>
  readonly sessions: RequestSessions
  readonly ending: SessionEnding
  /** The frontend's path prefix (docs/frontends.md): the endpoints and the landing are under it. */
  readonly pathPrefix: string
}

export function registerLogoutRoute(app: FastifyInstance, deps: LogoutDependencies): void {
  const prefix = deps.pathPrefix
  const home = `${prefix}/`
  // The post-logout landing (`post_logout_redirect_uri`): back to the app, which finds itself
  // logged out. It touches no cookie: any page can navigate here, and clearing the cookie of a
  // session that stays alive would only orphan it (the logout itself cleared the cookie).
  app.get(`${prefix}/bff/logged-out`, async (_request, reply) => reply.redirect(home, 302))

  app.get<{ Querystring: { sid?: unknown } }>(`${prefix}/bff/logout`, async (request, reply) => {
    const session = await deps.sessions.load(request, { slide: false })
    // No session (none, ended, or a cross-site navigation that carried no Strict cookie): nothing to end.
    if (session === undefined) return reply.redirect(home, 302)
    const sid = request.query.sid
    if (typeof sid !== 'string' || !constantTimeEqual(sid, logoutIdOf(session.handle))) {
      request.log.warn(
        { event: 'logout.sid_invalid', present: typeof sid === 'string' },
        'logout link not bound to this session',
      )
      throw new BffError('BFF_ERR_LOGOUT_SID_INVALID')
    }
    await endSession(deps, request, session)
    deps.sessions.clearCookie(reply)
    return reply.redirect(deps.oidc.buildEndSessionUrl(session.record.id_token) ?? home, 302)
  })

  // onRequest: refused before the body is even parsed (a cross-site form POST gets 403, not 415).
  app.post(
    `${prefix}/bff/logout`,
    { onRequest: async (request) => guardCsrf(request, deps.config.publicUrl) },
    async (request, reply) => {
      const session = await deps.sessions.load(request, { slide: false })
      if (session !== undefined) await endSession(deps, request, session)
      deps.sessions.clearCookie(reply)
      // No id_token_hint: the answer is read by page JavaScript, and no token may reach it.
      return { logoutUrl: deps.oidc.buildEndSessionUrl(undefined) ?? home }
    },
  )
}

/** Ends the session and those sharing its IdP session; revokes the refresh token when configured. */
async function endSession(
  { oidc, ending, config }: LogoutDependencies,
  request: FastifyRequest,
  session: LoadedSession,
): Promise<void> {
  await ending.endSession(session, 'logout', request.log)
  const refreshToken = session.record.refresh_token
  if (config.oidc.revokeRefreshTokenOnLogout && refreshToken !== undefined) {
    // The local session is gone whatever happens here; a failed revocation is only logged.
    await oidc.revokeRefreshToken(refreshToken).then(
      () => request.log.info({ event: 'logout.refresh_token_revoked' }, 'refresh token revoked'),
      (err: unknown) =>
        request.log.warn({ event: 'logout.revocation_failed', err }, 'could not revoke the refresh token'),
    )
  }
}
