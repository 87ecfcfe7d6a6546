import type { TeardownCause } from '../events.ts'
import type { SessionEnding, SessionEndingLog } from '../session/ending.ts'
import type { SubjectTarget } from './subject.ts'

/**
 * Ends the sessions a subject names through the one home of a session ending
 * (`session/ending.ts`, back-channel logout's path): the store deletes them from Redis and
 * announces the removal on its pub/sub channel, so every replica answers the next request with
 * 401 `session_ended` and closes that session's streams and WebSockets; the ending is counted
 * and logged once there. Sessions are indexed under the OIDC issuer and their frontend: the
 * subject's sessions end on every frontend of that issuer (`frontends`, docs/frontends.md;
 * absent: the one frontend). Returns how many ended; a target bffgate cannot map ends none.
 */
export async function endSessionsOf(
  ending: SessionEnding,
  oidcIssuer: string,
  target: SubjectTarget,
  cause: TeardownCause,
  log?: SessionEndingLog,
  frontends: readonly string[] = [],
): Promise<number> {
  if (target.kind !== 'session' && target.kind !== 'user') return 0
  let ended = 0
  for (const frontend of frontends.length === 0 ? [undefined] : frontends) {
    ended +=
      target.kind === 'session'
        ? await ending.endIdpSession(oidcIssuer, target.sid, cause, log, frontend)
        : await ending.endSubject(oidcIssuer, target.sub, cause, log, frontend)
  }
  return ended
}
