import { BffError } from '../errors.ts'
import { OidcError, type OidcClient, type TokenSet } from '../oidc/client.ts'
import type { LoadedSession, SessionRecord, SessionStore, StoredAccessToken } from '../session/types.ts'
import { isStillValid, needsRefresh } from './refresh-policy.ts'

/** What the proxy gets for one request: a token to attach, nothing, or an error to answer. */
export type AccessTokenResult =
  | { readonly kind: 'bearer'; readonly token: StoredAccessToken }
  | { readonly kind: 'error'; readonly error: BffError; readonly sessionEnded: boolean }

export interface TokenManagerOptions {
  readonly store: SessionStore
  readonly oidc: OidcClient
  readonly skewSeconds: number
  /** Epoch milliseconds. */
  readonly now?: () => number
  readonly log: { warn (obj: object, msg: string): void; info (obj: object, msg: string): void }
}

export interface TokenManager {
  /** A valid access token for the session, refreshing it first when it is about to expire. */
  getAccessToken (session: LoadedSession): Promise<AccessTokenResult>
  /** Ends the session and every session bound to the same IdP session. */
  endSession (session: LoadedSession, cause: string): Promise<void>
}

/** Seconds a client should wait before retrying after a transient IdP failure. */
const RETRY_AFTER_SECONDS = 5

/**
 * Between the session store and the proxy (design §5): hands out a fresh access token per
 * request. Concurrent requests of one session in this process share one exchange.
 */
export function createTokenManager (options: TokenManagerOptions): TokenManager {
  const { store, oidc, skewSeconds, log } = options
  const now = options.now ?? Date.now
  const inFlight = new Map<string, Promise<SessionRecord>>()

  const endSession = async (session: LoadedSession, cause: string) => {
    const { record } = session
    await store.delete(session.handle)
    const others = record.sid !== undefined ? await store.deleteByIdpSession(record.iss, record.sid) : 0
    log.info({ event: 'session.ended', cause, sessions: 1 + others }, 'session ended')
  }

  const exchange = async (session: LoadedSession): Promise<SessionRecord> => {
    const { record } = session
    const tokens: TokenSet = await oidc.refresh(record.refresh_token!)
    const updated: SessionRecord = {
      ...record,
      // An Online Refresh Token is not rotated: keep it when the answer carries none.
      refresh_token: tokens.refresh_token ?? record.refresh_token,
      ...(tokens.id_token !== undefined && { id_token: tokens.id_token }),
      tokens: { ...record.tokens, '': { access_token: tokens.access_token, token_type: tokens.token_type, expires_at: tokens.expires_at, ...(tokens.scope !== undefined && { scope: tokens.scope }) } },
      refreshed_at: Math.floor(now() / 1000),
    }
    await store.update(session.handle, updated)
    return updated
  }

  return {
    endSession,

    async getAccessToken (session) {
      const nowSeconds = Math.floor(now() / 1000)
      const current = session.record.tokens['']
      if (!needsRefresh(current, nowSeconds, skewSeconds)) return { kind: 'bearer', token: current! }
      if (session.record.refresh_token === undefined) {
        if (isStillValid(current, nowSeconds)) return { kind: 'bearer', token: current }
        await endSession(session, 'expired')
        return { kind: 'error', error: new BffError('BFF_ERR_SESSION_ENDED'), sessionEnded: true }
      }
      const key = session.handle.storageKey
      let flight = inFlight.get(key)
      if (flight === undefined) {
        flight = exchange(session).finally(() => inFlight.delete(key))
        inFlight.set(key, flight)
      }
      try {
        const record = await flight
        return { kind: 'bearer', token: record.tokens['']! }
      } catch (err) {
        if (err instanceof OidcError && err.kind === 'invalid_grant') {
          await endSession(session, 'invalid_grant')
          return { kind: 'error', error: new BffError('BFF_ERR_SESSION_ENDED', { cause: err }), sessionEnded: true }
        }
        if (isStillValid(current, nowSeconds)) {
          log.warn({ event: 'token.refresh_failed', err }, 'refresh failed; using the current access token while it is valid')
          return { kind: 'bearer', token: current }
        }
        if (err instanceof BffError) return { kind: 'error', error: err, sessionEnded: false }
        return { kind: 'error', error: new BffError('BFF_ERR_IDP_UNAVAILABLE', { cause: err, retryAfter: RETRY_AFTER_SECONDS }), sessionEnded: false }
      }
    },
  }
}
