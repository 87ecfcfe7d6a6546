import type { FastifyInstance } from 'fastify'
import type { RequestSessions } from '../../http/request-session.ts'
import { logoutIdOf } from '../../session/logout-id.ts'

/**
 * `GET /bff/user`: the user's claims and session expiry for the SPA; never a token. It
 * does not slide the session: an SPA polling it must not keep an idle session alive.
 */
export function registerUserRoute(
  app: FastifyInstance,
  deps: { readonly sessions: RequestSessions; readonly now: () => number; readonly pathPrefix: string },
): void {
  const prefix = deps.pathPrefix
  app.get(`${prefix}/bff/user`, async (request, reply) => {
    const session = await deps.sessions.find(request, { slide: false })
    if ('missing' in session) throw deps.sessions.missingError(request, reply, session)
    const nowSeconds = Math.floor(deps.now() / 1000)
    return {
      claims: session.record.claims,
      session: {
        /** When the session ends if nothing happens (idle or absolute, whichever first), epoch seconds. */
        expiresAt: nowSeconds + session.expiresIn,
        absoluteExpiresAt: session.record.absolute_expires_at,
      },
      /** Where the SPA navigates to log out: bound to this session (a cross-site page cannot know it). */
      logoutUrl: `${prefix}/bff/logout?sid=${logoutIdOf(session.handle)}`,
    }
  })
}
