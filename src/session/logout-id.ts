import { sha256 } from '../crypto.ts'
import type { SessionHandle } from './types.ts'

/**
 * The value that binds a logout link to one session (`GET /bff/logout?sid=...`, as Duende BFF
 * binds its logout endpoint to the session's `sid`). It is derived from the session's storage
 * key, itself an HMAC of the cookie's random id under the server secret: stable for the
 * session, not a credential (it opens nothing and is useless without the session cookie), and
 * unknowable to a cross-site page, which therefore cannot forge a working logout link.
 */
export function logoutIdOf(handle: Pick<SessionHandle, 'storageKey'>): string {
  return sha256(`bffgate logout id v1\u0000${handle.storageKey}`).subarray(0, 16).toString('base64url')
}
