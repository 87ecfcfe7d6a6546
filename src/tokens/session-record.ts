import type { DpopKey } from '../dpop.ts'
import type { TokenSet } from '../oidc/client.ts'
import { capAbsoluteDeadline } from '../session/session-expiry.ts'
import type { SessionRecord, StoredAccessToken } from '../session/types.ts'

/**
 * The session record's life: made at login from the code exchange's tokens
 * ({@link newSessionRecord}), then updated by each refresh ({@link mergeTokens}). Pure.
 */

/** ID-token claims that describe the protocol exchange, not the user: never shown to the SPA. */
const PROTOCOL_CLAIMS = new Set([
  'aud',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'at_hash',
  'c_hash',
  's_hash',
  'azp',
  'jti',
  'sid',
  'auth_time',
  'acr',
  'amr',
  'iss',
  'cnf',
  'session_expiry',
])

/** The record of a new session, from a login's tokens and validated ID-token claims. */
export function newSessionRecord(login: {
  readonly issuer: string
  readonly tokens: TokenSet & { readonly claims: Readonly<Record<string, unknown>> }
  /** When the IdP session started (`auth_time`, checked), epoch seconds. */
  readonly authTime: number
  readonly absoluteSeconds: number
  readonly nowSeconds: number
  readonly dpopKey: DpopKey | undefined
  /** The frontend the session belongs to (docs/frontends.md). */
  readonly frontend?: string
}): SessionRecord {
  const { tokens, nowSeconds } = login
  const { claims } = tokens
  return {
    v: 1,
    ...(login.frontend !== undefined && { frontend: login.frontend }),
    iss: login.issuer,
    sub: String(claims.sub),
    ...(typeof claims.sid === 'string' && { sid: claims.sid }),
    claims: Object.fromEntries(Object.entries(claims).filter(([name]) => !PROTOCOL_CLAIMS.has(name))),
    ...(tokens.id_token !== undefined && { id_token: tokens.id_token }),
    ...(tokens.refresh_token !== undefined && { refresh_token: tokens.refresh_token }),
    tokens: { '': storedAccessToken(tokens, nowSeconds) },
    created_at: nowSeconds,
    // The IdP session started at auth_time (it may predate this login through SSO), and
    // ends at the latest when the IdP says (`session_expiry`, IPSIE SL1).
    absolute_expires_at: capAbsoluteDeadline(login.authTime + login.absoluteSeconds, claims),
    refreshed_at: nowSeconds,
    ...(login.dpopKey !== undefined && { dpop_key: login.dpopKey }),
  }
}

/** The access token of an answer from the token endpoint, as a session stores it. */
function storedAccessToken(tokens: TokenSet, receivedAt: number): StoredAccessToken {
  return {
    access_token: tokens.access_token,
    token_type: tokens.token_type,
    expires_at: tokens.expires_at,
    // With expires_at, the lifetime the IdP issued: the refresh skew is fitted to it.
    issued_at: Math.min(receivedAt, tokens.expires_at),
    ...(tokens.scope !== undefined && { scope: tokens.scope }),
  }
}

/**
 * The session after an exchange: the new access token under its key, and the refresh token
 * rotated in the same write when the IdP rotated it. An online refresh token is not rotated:
 * the answer carries none and the stored one is kept.
 */
export function mergeTokens(
  record: SessionRecord,
  tokens: TokenSet,
  tokenKey: string,
  nowSeconds: number,
): SessionRecord {
  return {
    ...record,
    refresh_token: tokens.refresh_token ?? record.refresh_token,
    ...(tokens.id_token !== undefined && { id_token: tokens.id_token }),
    tokens: {
      ...record.tokens,
      [tokenKey]: storedAccessToken(tokens, nowSeconds),
    },
    refreshed_at: nowSeconds,
    refresh_count: (record.refresh_count ?? 0) + 1,
    // A new ID token may lower the IdP's declared ceiling (session_expiry); never raise it.
    absolute_expires_at: capAbsoluteDeadline(record.absolute_expires_at, tokens.claims),
  }
}
