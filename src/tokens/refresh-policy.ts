import type { RefreshTokenKind } from '../config/types.ts'
import type { SessionRecord, StoredAccessToken } from '../session/types.ts'

/** The refresh timing rules (docs/sessions.md), as numbers. Times are seconds. */
export interface RefreshPolicy {
  /** Refresh an access token this long before it expires. */
  readonly skewSeconds: number
  /** The IdP session's idle timeout, which only a refresh-token exchange extends (ORTs). */
  readonly idleSeconds: number
  /** When set, exchange at least this often while the session is active. */
  readonly checkSeconds?: number
  readonly refreshTokenKind: RefreshTokenKind
}

/** Why a request must wait for an exchange before it is proxied. */
export type RefreshReason =
  /** No access token yet for this audience/scope. */
  | 'missing'
  /** The access token expires within the skew. */
  | 'expiring'
  /** The IdP idle deadline is near: an exchange keeps an active user's IdP session alive. */
  | 'keep_alive'
  /** `BFF_SESSION_CHECK_SECONDS` elapsed since the last exchange. */
  | 'session_check'
  /** The upstream refused this very token (`invalid_token`). */
  | 'rejected'

export type RefreshDecision = { readonly refresh: false } | { readonly refresh: true; readonly reason: RefreshReason }

const NO_REFRESH: RefreshDecision = { refresh: false }

/**
 * Whether a proxied request must first exchange the refresh token. Pure: time is passed in.
 * Only called for API activity, never for `/bff/user`, and never on a timer, so an IdP session
 * is kept alive by a user's real use and by nothing else.
 */
export function decideRefresh(
  record: SessionRecord,
  tokenKey: string,
  nowSeconds: number,
  policy: RefreshPolicy,
  rejectedToken?: string,
): RefreshDecision {
  const token = record.tokens[tokenKey]
  if (token === undefined) return { refresh: true, reason: 'missing' }
  if (rejectedToken !== undefined && token.access_token === rejectedToken) return { refresh: true, reason: 'rejected' }
  if (needsRefresh(token, nowSeconds, effectiveSkewSeconds(token, policy.skewSeconds)))
    return { refresh: true, reason: 'expiring' }
  if (record.refresh_token === undefined) return NO_REFRESH
  const sinceExchange = nowSeconds - record.refreshed_at
  // Half the idle window: early enough that a user active at a steady pace never meets the
  // IdP's idle deadline, late enough that exchanges stay rare (Auth0 default: every 36 h).
  if (policy.refreshTokenKind === 'online' && sinceExchange >= policy.idleSeconds / 2)
    return { refresh: true, reason: 'keep_alive' }
  if (policy.checkSeconds !== undefined && sinceExchange >= policy.checkSeconds)
    return { refresh: true, reason: 'session_check' }
  return NO_REFRESH
}

/**
 * Of the lifetime the IdP actually issued, at most this share is spent refreshing early: a
 * configured skew longer than that would make every token look stale as soon as it arrives.
 */
const MAX_SKEW_SHARE = 1 / 3

/** The lifetime the IdP issued the token with, in seconds; undefined when not recorded. */
export function issuedLifetimeSeconds(token: StoredAccessToken): number | undefined {
  return token.issued_at === undefined ? undefined : Math.max(0, token.expires_at - token.issued_at)
}

/**
 * The skew that fits this token: the configured one, but never more than
 * {@link MAX_SKEW_SHARE} of its issued lifetime (a token issued for 20 s with a 30 s skew is
 * refreshed 6 s before it expires, not at once). Tokens stored without `issued_at` keep the
 * configured skew.
 */
export function effectiveSkewSeconds(token: StoredAccessToken, configuredSkewSeconds: number): number {
  const lifetime = issuedLifetimeSeconds(token)
  return lifetime === undefined
    ? configuredSkewSeconds
    : Math.min(configuredSkewSeconds, Math.floor(lifetime * MAX_SKEW_SHARE))
}

/** True when the configured skew does not fit this token's issued lifetime (it is capped). */
export function skewCapped(token: StoredAccessToken, configuredSkewSeconds: number): boolean {
  return effectiveSkewSeconds(token, configuredSkewSeconds) < configuredSkewSeconds
}

/**
 * Whether a request must wait for the exchange `decision` asked for, or goes on with the
 * current token while the exchange runs in the background: it waits only when there is no
 * token to send (missing, expired), the upstream just refused this very one, or the operator
 * asked for a session check (`BFF_SESSION_CHECK_SECONDS`: a revoked IdP session must not get
 * one more request through after the interval).
 */
export function mustWaitForRefresh(
  decision: RefreshDecision,
  token: StoredAccessToken | undefined,
  nowSeconds: number,
): boolean {
  if (!decision.refresh) return false
  if (decision.reason === 'missing' || decision.reason === 'rejected' || decision.reason === 'session_check')
    return true
  return !isStillValid(token, nowSeconds)
}

/** True when the token is missing or expires within `skewSeconds` of `nowSeconds`. */
export function needsRefresh(token: StoredAccessToken | undefined, nowSeconds: number, skewSeconds: number): boolean {
  return token === undefined || token.expires_at - skewSeconds <= nowSeconds
}

/** True while the token can still be sent (used when a refresh fails transiently). */
export function isStillValid(token: StoredAccessToken | undefined, nowSeconds: number): token is StoredAccessToken {
  return token !== undefined && token.expires_at > nowSeconds
}

/**
 * The key under which a route's token is cached in the session: '' for the login's own. A
 * token bound to the session's DPoP key where the login's is a bearer token (`ownDpop`) is
 * another token, under a key of its own.
 */
export function tokenKeyFor(
  route: { readonly audience?: string; readonly scope?: string },
  options: { ownDpop?: boolean } = {},
): string {
  const key =
    route.audience === undefined && route.scope === undefined ? '' : `${route.audience ?? ''} ${route.scope ?? ''}`
  return options.ownDpop === true ? `${key}#dpop` : key
}
