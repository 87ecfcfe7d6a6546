import type { FastifyReply, FastifyRequest } from 'fastify'
import { BffError } from '../errors.ts'
import { expiredCookieOptions, sessionCookieOptions } from '../session/cookie.ts'
import type { SessionEnding } from '../session/ending.ts'
import type { LoadedSession, MissingSession, SessionStore } from '../session/types.ts'

/**
 * A request's session: read through the cookie that names it (one store round trip), the
 * cookie set and cleared, and the error for a request that needs a session and has none.
 * Made once in app.ts and handed to the routes that need it.
 */
export interface RequestSessions {
  /** The session the request's cookie names, or undefined. */
  load(request: FastifyRequest, options: { slide: boolean }): Promise<LoadedSession | undefined>
  /** {@link load}, or why there is none (for {@link missingError}). */
  find(request: FastifyRequest, options: { slide: boolean }): Promise<LoadedSession | MissingSession>
  setCookie(reply: FastifyReply, value: string, maxAgeSeconds: number): void
  clearCookie(reply: FastifyReply): void
  /**
   * The error for a request that needs a session and has none: `login_required` without a
   * cookie; `session_ended` (and the cookie cleared) when the cookie names no live session.
   * A cookie of ours whose session is gone has expired (or was ended elsewhere): that is
   * counted as an expiry; anything else is logged as an invalid cookie.
   */
  missingError(request: FastifyRequest, reply: FastifyReply, why: MissingSession): BffError
}

export function createRequestSessions(options: {
  readonly store: SessionStore
  readonly cookieName: string
  readonly ending: SessionEnding
  /** The frontend whose sessions these are: another frontend's session is not found (docs/frontends.md). */
  readonly frontend: string
  /** The cookie's Path: `/`, or the frontend's path prefix. */
  readonly cookiePath: string
}): RequestSessions {
  const { store, cookieName, ending, frontend, cookiePath } = options
  // Made once: a read costs no allocation for its options.
  const sliding = { slide: true, frontend }
  const notSliding = { slide: false, frontend }
  const clearCookie = (reply: FastifyReply): void => {
    reply.setCookie(cookieName, '', expiredCookieOptions('strict', cookiePath))
  }
  return {
    load: (request, loadOptions) => store.load(request.cookies[cookieName], loadOptions.slide ? sliding : notSliding),
    find: (request, loadOptions) => store.find(request.cookies[cookieName], loadOptions.slide ? sliding : notSliding),
    setCookie(reply, value, maxAgeSeconds) {
      reply.setCookie(cookieName, value, sessionCookieOptions(maxAgeSeconds, cookiePath))
    },
    clearCookie,
    missingError(request, reply, why) {
      if (why.missing === 'no_cookie') return new BffError('BFF_ERR_SESSION_REQUIRED')
      clearCookie(reply)
      if (why.missing === 'ended') ending.foundExpired(request.log)
      else request.log.debug({ event: 'session.cookie_invalid' }, 'the session cookie is not one of ours')
      return new BffError('BFF_ERR_SESSION_ENDED')
    },
  }
}
