import type { TeardownCause } from '../events.ts'

/**
 * Why a session ended, as the store announces it to every replica (Redis pub/sub) and as
 * `GET /bff/session-events` tells the page. Pure: no I/O.
 */
export const SESSION_END_REASONS = [
  /** `POST /bff/logout`, in this tab, another tab or on another replica. */
  'logout',
  /** The IdP sent a back-channel logout token for the session (or its user). */
  'backchannel_logout',
  /** The IdP refused the refresh token (`invalid_grant`): the IdP session is gone (revoked, session check). */
  'revoked',
  /** No API activity for the idle timeout. */
  'idle_timeout',
  /** The absolute lifetime (or the IdP's declared `session_expiry`) was reached. */
  'absolute_timeout',
  /** The session had no refresh token left to renew an expired access token. */
  'expired',
  /** A new login in this browser replaced the session. */
  'replaced',
  /** Gone for a reason this replica did not hear (an announcement missed while Redis reconnected). */
  'ended',
] as const

export type SessionEndReason = (typeof SESSION_END_REASONS)[number]

const KNOWN = new Set<string>(SESSION_END_REASONS)

/** Marks the reason in an announcement. A storage key never equals `!<reason>` (it contains `session:{`). */
const REASON_MARK = '!'

/**
 * The pub/sub message announcing removed sessions: the storage keys separated by spaces (what
 * replicas that know no reason read), preceded by `!<reason>` when there is one.
 */
export function encodeRemoval(keys: readonly string[], reason?: SessionEndReason): string {
  return reason === undefined ? keys.join(' ') : `${REASON_MARK}${reason} ${keys.join(' ')}`
}

/** The storage keys and the reason of an announcement; without a known reason, `ended`. */
export function decodeRemoval(message: string): { keys: string[]; reason: SessionEndReason } {
  const parts = message.split(' ').filter((part) => part !== '')
  const first = parts[0]
  if (first !== undefined && first.startsWith(REASON_MARK) && KNOWN.has(first.slice(REASON_MARK.length))) {
    parts.shift()
    return { keys: parts, reason: first.slice(REASON_MARK.length) as SessionEndReason }
  }
  return { keys: parts, reason: 'ended' }
}

/** The reason announced for a teardown the token manager or a route performs. */
export function endReasonFor(cause: TeardownCause): SessionEndReason {
  switch (cause) {
    case 'invalid_grant':
      return 'revoked'
    case 'backchannel':
      return 'backchannel_logout'
    case 'logout':
      return 'logout'
    case 'expired':
      return 'expired'
    case 'security_event':
      return 'revoked'
    case 'global_revocation':
      return 'revoked'
  }
}
