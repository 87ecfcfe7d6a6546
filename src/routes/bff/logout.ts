import type { FastifyInstance } from 'fastify'
import { guardCsrf } from '../../plugins/csrf.ts'
import { clearSessionCookie, loadRequestSession } from '../../plugins/session.ts'

/**
 * `POST /bff/logout` (CSRF header required): ends the session and every session sharing
 * its IdP session, clears the cookie, and answers with the IdP end-session URL
 * (RP-initiated logout with `id_token_hint`, `post_logout_redirect_uri` and `client_id`)
 * for the SPA to navigate to.
 */
export function registerLogoutRoute (app: FastifyInstance): void {
  // The post-logout landing (`post_logout_redirect_uri`): clears whatever cookie is left and
  // sends the browser to the app, which finds itself logged out.
  app.get('/bff/logged-out', async (_request, reply) => {
    clearSessionCookie(reply)
    return reply.redirect('/', 302)
  })

  // onRequest: refused before the body is even parsed (a cross-site form POST gets 403, not 415).
  app.post('/bff/logout', { onRequest: async (request) => guardCsrf(request) }, async (request, reply) => {
    const { oidc, tokens } = app.bff
    const session = await loadRequestSession(request, { slide: false })
    if (session !== undefined) {
      await tokens.endSession(session, 'logout')
      const refreshToken = session.record.refresh_token
      if (app.bff.config.oidc.revokeRefreshTokenOnLogout && refreshToken !== undefined) {
        // The local session is gone whatever happens here; a failed revocation is only logged.
        await oidc.revokeRefreshToken(refreshToken).then(
          () => request.log.info({ event: 'logout.refresh_token_revoked' }, 'refresh token revoked'),
          (err: unknown) => request.log.warn({ event: 'logout.revocation_failed', err }, 'could not revoke the refresh token'),
        )
      }
    }
    clearSessionCookie(reply)
    return { logoutUrl: oidc.buildEndSessionUrl(session?.record.id_token) ?? '/' }
  })
}
