import { sha256 } from '../crypto.ts'

/**
 * Redis key names, all in one place. The per-session keys share the hash tag `{<hashed id>}`,
 * so on Redis Cluster they live in one slot. Index keys name users and IdP sessions only
 * by hash: no subject identifier (often an e-mail address) appears in Redis in clear.
 */
export function createKeyNames(prefix: string) {
  const digest = (...parts: string[]) => sha256(parts.join('\u0000')).subarray(0, 18).toString('base64url')
  return {
    /** The session: its deadline, its index keys and the sealed record (redis-backend.ts). */
    session: (hashedId: string) => `${prefix}session:{${hashedId}}`,
    /** Refresh lock of one session, in the session's slot. */
    refreshLock: (hashedId: string) => `${prefix}lock:{${hashedId}}`,
    /**
     * The session keys bound to one IdP session (a hash: field names are the session keys).
     * `frontend` scopes it to one frontend's sessions (docs/frontends.md); absent: the first
     * frontend's (the only one of a single-frontend deployment, whose keys never change).
     */
    sidIndex: (iss: string, sid: string, frontend?: string) =>
      `${prefix}bysid:${frontend === undefined ? digest(iss, sid) : digest(iss, sid, frontend)}`,
    /** The session keys of one user (a hash, as above; `frontend` as above). */
    subIndex: (iss: string, sub: string, frontend?: string) =>
      `${prefix}bysub:${frontend === undefined ? digest(iss, sub) : digest(iss, sub, frontend)}`,
    /** Pub/sub channel announcing removed sessions to every replica sharing the prefix. */
    removedChannel: `${prefix}removed`,
    /** One-time markers (used login states, logout-token ids). */
    once: (namespace: string, id: string) => `${prefix}once:${namespace}:${digest(id)}`,
  }
}

export type KeyNames = ReturnType<typeof createKeyNames>
