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
  app.post('/bff/logout', { preHandler: guardCsrf }, async (request, reply) => {
    const { oidc, tokens } = app.bff
    reply.header('cache-control', 'no-store')
    const session = await loadRequestSession(request, { slide: false })
    if (session !== undefined) await tokens.endSession(session, 'logout')
    clearSessionCookie(reply)
    return { logoutUrl: oidc.buildEndSessionUrl(session?.record.id_token) ?? '/' }
  })
}
