import type { FastifyReply, FastifyRequest } from 'fastify'
import { BffError } from '../errors.ts'
import { expiredCookieOptions, sessionCookieOptions } from '../session/cookie.ts'
import type { LoadedSession, MissingSession } from '../session/types.ts'

/** Reads the session the request's cookie names (one store round trip), or undefined. */
export function loadRequestSession (request: FastifyRequest, options: { slide: boolean }): Promise<LoadedSession | undefined> {
  const { store, config } = request.server.bff
  return store.load(request.cookies[config.session.cookieName], options)
}

/** {@link loadRequestSession}, or why there is none (for {@link missingSessionError}). */
export function findRequestSession (request: FastifyRequest, options: { slide: boolean }): Promise<LoadedSession | MissingSession> {
  const { store, config } = request.server.bff
  return store.find(request.cookies[config.session.cookieName], options)
}

export function setSessionCookie (reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  reply.setCookie(reply.server.bff.config.session.cookieName, value, sessionCookieOptions(maxAgeSeconds))
}

export function clearSessionCookie (reply: FastifyReply): void {
  reply.setCookie(reply.server.bff.config.session.cookieName, '', expiredCookieOptions('strict'))
}

/**
 * The error for a request that needs a session and has none: `login_required` without a
 * cookie; `session_ended` (and the cookie cleared) when the cookie names no live session.
 * A cookie of ours whose session is gone has expired (or was ended elsewhere): that is
 * counted as an expiry; anything else is logged as an invalid cookie.
 */
export function missingSessionError (request: FastifyRequest, reply: FastifyReply, why: MissingSession): BffError {
  if (why.missing === 'no_cookie') return new BffError('BFF_ERR_SESSION_REQUIRED')
  clearSessionCookie(reply)
  if (why.missing === 'ended') request.server.bff.ending.foundExpired(request.log)
  else request.log.debug({ event: 'session.cookie_invalid' }, 'the session cookie is not one of ours')
  return new BffError('BFF_ERR_SESSION_ENDED')
}
