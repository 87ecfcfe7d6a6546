import { noEvents, type GatewayEvents, type TeardownCause } from '../events.ts'
import { endReasonFor } from './end-reason.ts'
import type { SessionHandle, SessionRecord, SessionStore } from './types.ts'

export interface SessionEndingLog {
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

/**
 * The one place where sessions end: each method deletes from the shared store (every replica
 * hears why, see end-reason.ts), counts `bff_sessions_ended_total` and logs `session.ended`
 * once. Used by the token manager (refresh token refused, nothing left to renew with),
 * logout, back-channel logout and the pre-handler's expiry; a receiver of other revocation
 * signals (security events) calls {@link SessionEnding.endIdpSession} or
 * {@link SessionEnding.endSubject}. `log` is the caller's (a request's, so its line carries the
 * request id), else the one given at creation.
 */
export interface SessionEnding {
  /** Ends one session and every session bound to the same IdP session; returns how many. */
  endSession(
    session: { readonly handle: SessionHandle; readonly record: SessionRecord },
    cause: TeardownCause,
    log?: SessionEndingLog,
  ): Promise<number>
  /**
   * Ends every session of `frontend` (the first one when absent) bound to that IdP session
   * (`iss` + `sid`); returns how many.
   */
  endIdpSession(
    iss: string,
    sid: string,
    cause: TeardownCause,
    log?: SessionEndingLog,
    frontend?: string,
  ): Promise<number>
  /** Ends every session of that user (`iss` + `sub`) on `frontend` (the first one when absent); returns how many. */
  endSubject(iss: string, sub: string, cause: TeardownCause, log?: SessionEndingLog, frontend?: string): Promise<number>
  /**
   * A request's cookie named a session of ours that is gone (it expired, or ended where this
   * replica did not see it): counted as an expiry. Nothing to delete.
   */
  foundExpired(log?: SessionEndingLog): void
}

export function createSessionEnding(options: {
  readonly store: SessionStore
  readonly events?: GatewayEvents
  readonly log: SessionEndingLog
}): SessionEnding {
  const { store } = options
  const events = options.events ?? noEvents
  const ended = (
    cause: TeardownCause,
    sessions: number,
    log: SessionEndingLog,
    fields: object,
    msg: string,
  ): number => {
    events.sessionsEnded(cause, sessions)
    log.info({ event: 'session.ended', cause, ...fields, sessions }, msg)
    return sessions
  }
  return {
    async endSession({ handle, record }, cause, log = options.log) {
      await store.delete(handle, endReasonFor(cause))
      // The IdP session's other sessions of this frontend only: another frontend's client may
      // share the IdP session (single sign-on) and is told by its own logout.
      const others =
        record.sid !== undefined
          ? await store.deleteByIdpSession(record.iss, record.sid, endReasonFor(cause), record.frontend)
          : 0
      return ended(cause, 1 + others, log, {}, 'session ended')
    },
    async endIdpSession(iss, sid, cause, log = options.log, frontend) {
      return ended(
        cause,
        await store.deleteByIdpSession(iss, sid, endReasonFor(cause), frontend),
        log,
        { by: 'sid', ...(frontend !== undefined && { frontend }) },
        'the sessions of an IdP session ended',
      )
    },
    async endSubject(iss, sub, cause, log = options.log, frontend) {
      return ended(
        cause,
        await store.deleteBySubject(iss, sub, endReasonFor(cause), frontend),
        log,
        { by: 'sub', ...(frontend !== undefined && { frontend }) },
        'the sessions of a user ended',
      )
    },
    foundExpired(log = options.log) {
      events.sessionsEnded('expired', 1)
      log.debug({ event: 'session.expired' }, 'the cookie names a session that has ended')
    },
  }
}
