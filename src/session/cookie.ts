import type { SerializeOptions } from '@fastify/cookie'

/**
 * Cookie attributes (IETF "OAuth 2.0 for Browser-Based Applications", BFF section):
 * `__Host-` prefix, Secure, HttpOnly, Path=/, no Domain. The session cookie is
 * SameSite=Strict; the login-state cookie is Lax because the IdP's redirect back to
 * `/bff/callback` is a cross-site top-level navigation.
 */
export const LOGIN_STATE_COOKIE = '__Host-bff-login'
/** Lifetime of a login attempt, in seconds. */
export const LOGIN_STATE_TTL_SECONDS = 600

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
