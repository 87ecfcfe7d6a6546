import type { SerializeOptions } from '@fastify/cookie'
import { sha256 } from './crypto.ts'

/**
 * Cookie attributes (IETF "OAuth 2.0 for Browser-Based Applications", BFF section):
 * `__Host-` prefix, Secure, HttpOnly, Path=/, no Domain. The session cookie is
 * SameSite=Strict; the login-state cookie is Lax because the IdP's redirect back to
 * `/bff/callback` is a cross-site top-level navigation.
 */
const LOGIN_STATE_COOKIE_PREFIX = '__Host-bff-login-'
/** Lifetime of a login attempt, in seconds. */
export const LOGIN_STATE_TTL_SECONDS = 600
/** Login attempts a browser may have pending at once (tabs logging in together); older ones are dropped. */
export const MAX_PENDING_LOGINS = 4

/**
 * Each login attempt has a cookie of its own, named after its `state`, so that several tabs
 * logging in at once (say, after a session ended) never overwrite each other's attempt.
 */
export function loginStateCookieName (state: string): string {
  return `${LOGIN_STATE_COOKIE_PREFIX}${sha256(state).subarray(0, 9).toString('base64url')}`
}

export function isLoginStateCookie (name: string): boolean {
  return name.startsWith(LOGIN_STATE_COOKIE_PREFIX)
}

export function sessionCookieOptions (maxAgeSeconds?: number): SerializeOptions {
  return { httpOnly: true, secure: true, sameSite: 'strict', path: '/', ...(maxAgeSeconds !== undefined && { maxAge: maxAgeSeconds }) }
}

export function loginStateCookieOptions (): SerializeOptions {
  return { httpOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: LOGIN_STATE_TTL_SECONDS }
}

/** Attributes that make a browser delete the cookie. */
export function expiredCookieOptions (sameSite: 'strict' | 'lax'): SerializeOptions {
  return { httpOnly: true, secure: true, sameSite, path: '/', maxAge: 0, expires: new Date(0) }
}
