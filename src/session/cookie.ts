import type { SerializeOptions } from '@fastify/cookie'

/**
 * Session cookie attributes (IETF "OAuth 2.0 for Browser-Based Applications", BFF section):
 * `__Host-` prefix, Secure, HttpOnly, Path=/, no Domain, SameSite=Strict. The login-state
 * cookie's are in login/transaction.ts.
 */
export function sessionCookieOptions(maxAgeSeconds?: number, path = '/'): SerializeOptions {
  return {
    httpOnly: true,
    secure: true,
    sameSite: 'strict',
    path,
    ...(maxAgeSeconds !== undefined && { maxAge: maxAgeSeconds }),
  }
}

/** Attributes that make a browser delete the cookie. */
export function expiredCookieOptions(sameSite: 'strict' | 'lax', path = '/'): SerializeOptions {
  return { httpOnly: true, secure: true, sameSite, path, maxAge: 0, expires: new Date(0) }
}
