import { sha256 } from './crypto.ts'

/**
 * Redis key names, all in one place. The per-session keys share the hash tag `{<hashed id>}`,
 * so on Redis Cluster they live in one slot. Index keys name users and IdP sessions only
 * by hash: no subject identifier (often an e-mail address) appears in Redis in clear.
 */
export function createKeyNames (prefix: string) {
  const digest = (...parts: string[]) => sha256(parts.join('\u0000')).subarray(0, 18).toString('base64url')
  return {
    /** The session record (a hash with the sealed record and its index keys). */
    session: (hashedId: string) => `${prefix}s:{${hashedId}}`,
    /** Refresh lock of one session, in the session's slot. */
    refreshLock: (hashedId: string) => `${prefix}lock:{${hashedId}}`,
    /** Set of session keys bound to one IdP session. */
    sidIndex: (iss: string, sid: string) => `${prefix}sid:${digest(iss, sid)}`,
    /** Set of session keys of one user. */
    subIndex: (iss: string, sub: string) => `${prefix}sub:${digest(iss, sub)}`,
    /** One-time markers (used login states, logout-token ids). */
    once: (namespace: string, id: string) => `${prefix}once:${namespace}:${digest(id)}`,
  }
}

export type KeyNames = ReturnType<typeof createKeyNames>
