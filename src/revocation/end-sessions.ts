import type { SessionStore } from '../session/types.ts'
import type { SubjectTarget } from './subject.ts'

/**
 * Ends the sessions a subject names through the one path every teardown by index uses
 * (back-channel logout's): the store deletes them from Redis and announces the removal on its
 * pub/sub channel, so every replica answers the next request with 401 `session_ended` and
 * closes that session's streams and WebSockets. Sessions are indexed under the OIDC issuer.
 * Returns how many ended; a target bffgate cannot map ends none.
 */
export async function endSessionsOf (store: SessionStore, oidcIssuer: string, target: SubjectTarget): Promise<number> {
  switch (target.kind) {
    case 'session': return store.deleteByIdpSession(oidcIssuer, target.sid, 'revoked')
    case 'user': return store.deleteBySubject(oidcIssuer, target.sub, 'revoked')
    default: return 0
  }
}
