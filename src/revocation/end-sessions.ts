import type { TeardownCause } from '../events.ts'
import type { SessionEnding, SessionEndingLog } from '../session/ending.ts'
import type { SubjectTarget } from './subject.ts'

/**
 * Ends the sessions a subject names through the one home of a session ending
 * (`session/ending.ts`, back-channel logout's path): the store deletes them from Redis and
 * announces the removal on its pub/sub channel, so every replica answers the next request with
 * 401 `session_ended` and closes that session's streams and WebSockets; the ending is counted
 * and logged once there. Sessions are indexed under the OIDC issuer. Returns how many ended; a
 * target bffgate cannot map ends none.
 */
export async function endSessionsOf (ending: SessionEnding, oidcIssuer: string, target: SubjectTarget, cause: TeardownCause, log?: SessionEndingLog): Promise<number> {
  switch (target.kind) {
    case 'session': return ending.endIdpSession(oidcIssuer, target.sid, cause, log)
    case 'user': return ending.endSubject(oidcIssuer, target.sub, cause, log)
    default: return 0
  }
}
