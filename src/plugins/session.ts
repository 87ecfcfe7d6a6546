import type { FastifyReply, FastifyRequest } from 'fastify'
import { expiredCookieOptions, sessionCookieOptions } from '../session/cookie.ts'
import type { LoadedSession } from '../session/types.ts'

/** Reads the session the request's cookie names (one store round trip), or undefined. */
export async function loadRequestSession (request: FastifyRequest, options: { slide: boolean }): Promise<LoadedSession | undefined> {
  const { store, config } = request.server.bff
  return store.load(request.cookies[config.session.cookieName], options)
}

export function hasSessionCookie (request: FastifyRequest): boolean {
  return request.cookies[request.server.bff.config.session.cookieName] !== undefined
}

export function setSessionCookie (reply: FastifyReply, value: string, maxAgeSeconds: number): void {
  reply.setCookie(reply.server.bff.config.session.cookieName, value, sessionCookieOptions(maxAgeSeconds))
}

export function clearSessionCookie (reply: FastifyReply): void {
  reply.setCookie(reply.server.bff.config.session.cookieName, '', expiredCookieOptions('strict'))
}
