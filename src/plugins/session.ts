import type { FastifyReply, FastifyRequest } from 'fastify'
import { BffError } from '../errors.ts'
import { decodeTicket } from '../session/ticket.ts'
import { expiredCookieOptions, sessionCookieOptions } from '../session/cookie.ts'
import type { LoadedSession } from '../session/types.ts'

/** Reads the session the request's cookie names (one store round trip), or undefined. */
export function loadRequestSession (request: FastifyRequest, options: { slide: boolean }): Promise<LoadedSession | undefined> {
  const { store, config } = request.server.bff
  return store.load(request.cookies[config.session.cookieName], options)
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
 * A well-formed cookie of ours whose record is gone has expired (or was ended elsewhere):
 * that is counted as an expiry; anything else is logged as an invalid cookie.
 */
export function missingSessionError (request: FastifyRequest, reply: FastifyReply): BffError {
  const { config, keyring, metrics } = request.server.bff
  const value = request.cookies[config.session.cookieName]
  if (value === undefined) return new BffError('BFF_ERR_SESSION_REQUIRED')
  clearSessionCookie(reply)
  const ticket = decodeTicket(value)
  if (ticket !== undefined && keyring.byKid(ticket.kid) !== undefined) {
    metrics.sessionsEnded('expired', 1)
    request.log.debug({ event: 'session.expired' }, 'the cookie names a session that has ended')
  } else {
    request.log.debug({ event: 'session.cookie_invalid' }, 'the session cookie is not one of ours')
  }
  return new BffError('BFF_ERR_SESSION_ENDED')
}
