import { setTimeout as sleep } from 'node:timers/promises'
import { BffError } from '../errors.ts'
import { noEvents, type GatewayEvents, type TeardownCause } from '../events.ts'
import { OidcError, type OidcClient, type TokenSet } from '../oidc/client.ts'
import { endReasonFor } from '../session/end-reason.ts'
import { capAbsoluteDeadline } from '../session/session-expiry.ts'
import type { LoadedSession, SessionHandle, SessionLock, SessionRecord, SessionStore, StoredAccessToken } from '../session/types.ts'
import { decideRefresh, isStillValid, type RefreshPolicy, type RefreshReason } from './refresh-policy.ts'

/** What the proxy gets for one request: a token to attach, or an error to answer with. */
export type AccessTokenResult =
  | { readonly kind: 'bearer'; readonly token: StoredAccessToken }
  | { readonly kind: 'error'; readonly error: BffError; readonly sessionEnded: boolean }

/** Which token a request needs. */
export interface TokenRequest {
  /** Cache key in the session ('' for the login's default audience); see `tokenKeyFor`. */
  readonly tokenKey: string
  readonly audience?: string
  readonly scope?: string
  /** The upstream answered `invalid_token` to this token: replace it unless already replaced. */
  readonly rejectedToken?: string
  /** Ask for a DPoP-bound token, proven with the session's DPoP key. */
  readonly dpop?: boolean
}


export interface TokenManagerLog {
  warn (obj: object, msg: string): void
  info (obj: object, msg: string): void
  debug (obj: object, msg: string): void
}

export interface TokenManagerOptions {
  readonly store: SessionStore
  readonly oidc: Pick<OidcClient, 'refresh'>
  readonly policy: RefreshPolicy
  /** Lifetime of the cross-replica refresh lock, ms; a crashed holder blocks no longer. */
  readonly lockTtlMs: number
  /** Longest a token-endpoint call can take, ms (the OIDC timeout); bounds how long a waiter waits. */
  readonly exchangeTimeoutMs: number
  /** Epoch milliseconds. */
  readonly now?: () => number
  readonly log: TokenManagerLog
  readonly events?: GatewayEvents
}

export interface TokenManager {
  /** A valid access token for the session and route, exchanging the refresh token first when needed. */
  getAccessToken (session: LoadedSession, request?: TokenRequest): Promise<AccessTokenResult>
  /** Ends the session and every session bound to the same IdP session. */
  endSession (session: { handle: SessionHandle; record: SessionRecord }, cause: TeardownCause): Promise<void>
}

/** Seconds a client should wait before retrying after a transient IdP failure. */
const RETRY_AFTER_SECONDS = 5
const DEFAULT_REQUEST: TokenRequest = { tokenKey: '' }

type Outcome =
  | { readonly kind: 'refreshed'; readonly record: SessionRecord }
  | { readonly kind: 'ended'; readonly cause?: unknown }
  | { readonly kind: 'failed'; readonly cause: unknown }

/**
 * The token manager of design §5. A refresh token is exchanged exactly once per need, however
 * many requests race for it: requests of one session in this process share one exchange
 * (a shared promise), and replicas take turns through a Redis lock with a bounded TTL whose
 * token fences the write. Whoever takes the lock re-reads the session first, because another
 * replica may already have refreshed; whoever waits polls the session until the holder's
 * result appears (or the lock lapses, if the holder died), then uses it.
 */
export function createTokenManager (options: TokenManagerOptions): TokenManager {
  const { store, oidc, policy, log, lockTtlMs } = options
  const events = options.events ?? noEvents
  const now = options.now ?? Date.now
  const nowSeconds = () => Math.floor(now() / 1000)
  const flights = new Map<string, Promise<Outcome>>()

  const endSession: TokenManager['endSession'] = async ({ handle, record }, cause) => {
    await store.delete(handle, endReasonFor(cause))
    const others = record.sid !== undefined ? await store.deleteByIdpSession(record.iss, record.sid, endReasonFor(cause)) : 0
    events.sessionsEnded(cause, 1 + others)
    log.info({ event: 'session.ended', cause, sessions: 1 + others }, 'session ended')
  }

  const needs = (record: SessionRecord, request: TokenRequest) =>
    decideRefresh(record, request.tokenKey, nowSeconds(), policy, request.rejectedToken)

  const exchangeHoldingLock = async (handle: SessionHandle, request: TokenRequest, lock: SessionLock): Promise<Outcome> => {
    // Re-read after taking the lock: another replica may have refreshed while we waited for it.
    const current = await store.reload(handle)
    if (current === undefined) return { kind: 'ended' }
    const decision = needs(current.record, request)
    if (!decision.refresh) return { kind: 'refreshed', record: current.record }
    const record = current.record
    let tokens: TokenSet
    try {
      const dpop = request.dpop === true ? record.dpop_key : undefined
      if (request.dpop === true && dpop === undefined) log.warn({ event: 'token.dpop_key_missing' }, 'a DPoP route, but the session has no DPoP key (it predates DPoP): the token will be a bearer token')
      tokens = await oidc.refresh(record.refresh_token!, refreshParameters(request), dpop !== undefined ? { dpop } : {})
    } catch (err) {
      events.tokenExchange(err instanceof OidcError && err.kind !== 'invalid_response' ? err.kind : 'rejected', decision.reason)
      if (err instanceof OidcError && err.kind === 'invalid_grant') {
        if ((record.refresh_count ?? 0) === 0) {
          log.warn({ event: 'token.first_exchange_invalid_grant' },
            'the first refresh of a session got invalid_grant: probably a misconfiguration (e.g. an Auth0 API with ephemeral sessions, which online refresh tokens do not support)')
        }
        await endSession({ handle, record }, 'invalid_grant')
        return { kind: 'ended', cause: err }
      }
      log.warn({ event: 'token.refresh_failed', reason: decision.reason, kind: err instanceof OidcError ? err.kind : 'unknown', err }, 'refresh failed')
      return { kind: 'failed', cause: err }
    }
    events.tokenExchange('success', decision.reason)
    const updated = mergeTokens(record, tokens, request.tokenKey, nowSeconds())
    if (!(await store.update(handle, updated, lock))) {
      if ((await store.reload(handle)) === undefined) return { kind: 'ended' }
      // The exchange outlived the lock: its access token is good, but another holder may
      // have written since; leave the stored record to them.
      log.warn({ event: 'token.lock_lost', lockTtlMs }, 'refresh took longer than the lock TTL; result not stored')
    }
    log.debug({ event: 'token.refreshed', reason: decision.reason, rotated: tokens.refresh_token !== undefined && tokens.refresh_token !== record.refresh_token }, 'token refreshed')
    return { kind: 'refreshed', record: updated }
  }

  /** Takes the session's lock, or waits for its holder's result; bounded by the lock TTL. */
  const refreshAcrossReplicas = async (session: LoadedSession, request: TokenRequest): Promise<Outcome> => {
    const giveUpAt = now() + lockTtlMs + options.exchangeTimeoutMs + 1000
    let pause = 10
    for (;;) {
      const lock = await store.lock(session.handle, lockTtlMs)
      if (lock !== undefined) {
        try {
          return await exchangeHoldingLock(session.handle, request, lock)
        } finally {
          await store.unlock(lock).catch((err: unknown) => log.warn({ event: 'token.unlock_failed', err }, 'could not release the refresh lock; it lapses by itself'))
        }
      }
      // Another replica holds the lock: wait for its result rather than exchanging twice.
      if (pause === 10) events.refreshLockWaited()
      await sleep(pause)
      pause = Math.min(pause * 2, 100)
      const current = await store.reload(session.handle)
      if (current === undefined) return { kind: 'ended' }
      if (!needs(current.record, request).refresh) return { kind: 'refreshed', record: current.record }
      if (now() > giveUpAt) return { kind: 'failed', cause: new Error('timed out waiting for the refresh lock') }
    }
  }

  const toResult = async (outcome: Outcome, session: LoadedSession, request: TokenRequest, reason: RefreshReason): Promise<AccessTokenResult> => {
    if (outcome.kind === 'refreshed') {
      const token = outcome.record.tokens[request.tokenKey]
      if (token !== undefined) return { kind: 'bearer', token }
      return { kind: 'error', error: new BffError('BFF_ERR_IDP_UNAVAILABLE', { retryAfter: RETRY_AFTER_SECONDS }), sessionEnded: false }
    }
    if (outcome.kind === 'ended') return { kind: 'error', error: new BffError('BFF_ERR_SESSION_ENDED', { cause: outcome.cause }), sessionEnded: true }
    // Transient failure: never tear down; keep using the current token while it is valid.
    const current = session.record.tokens[request.tokenKey]
    if (reason !== 'rejected' && isStillValid(current, nowSeconds())) return { kind: 'bearer', token: current }
    const error = outcome.cause instanceof BffError ? outcome.cause : new BffError('BFF_ERR_IDP_UNAVAILABLE', { cause: outcome.cause, retryAfter: RETRY_AFTER_SECONDS })
    return { kind: 'error', error, sessionEnded: false }
  }

  return {
    endSession,

    async getAccessToken (session, request = DEFAULT_REQUEST) {
      const decision = needs(session.record, request)
      const current = session.record.tokens[request.tokenKey]
      if (!decision.refresh) return { kind: 'bearer', token: current! }
      if (session.record.refresh_token === undefined) {
        if (isStillValid(current, nowSeconds()) && decision.reason !== 'rejected') return { kind: 'bearer', token: current }
        if (request.tokenKey !== '' || decision.reason === 'rejected') {
          return { kind: 'error', error: new BffError('BFF_ERR_SESSION_ENDED', { message: 'The session has no refresh token to get a new access token' }), sessionEnded: false }
        }
        await endSession(session, 'expired')
        return { kind: 'error', error: new BffError('BFF_ERR_SESSION_ENDED'), sessionEnded: true }
      }

      const key = session.handle.storageKey
      for (let round = 0; round < 3; round++) {
        const flight = flights.get(key)
        if (flight === undefined) {
          const promise = refreshAcrossReplicas(session, request).finally(() => flights.delete(key))
          flights.set(key, promise)
          return toResult(await promise, session, request, decision.reason)
        }
        // Join the exchange already running for this session in this process.
        events.refreshJoined()
        const outcome = await flight
        if (outcome.kind !== 'refreshed' || !needs(outcome.record, request).refresh) return toResult(outcome, session, request, decision.reason)
        // It refreshed another audience's token; ours still needs its own exchange.
        session = { ...session, record: outcome.record }
      }
      return toResult({ kind: 'failed', cause: new Error('refresh did not settle') }, session, request, decision.reason)
    },
  }
}

function refreshParameters (request: TokenRequest): Record<string, string> | undefined {
  if (request.audience === undefined && request.scope === undefined) return undefined
  return {
    // Auth0 names the API `audience`; RFC 8707 names it `resource`.
    ...(request.audience !== undefined && { audience: request.audience, resource: request.audience }),
    ...(request.scope !== undefined && { scope: request.scope }),
  }
}

/** The access token of an answer from the token endpoint, as a session stores it. */
export function storedAccessToken (tokens: TokenSet): StoredAccessToken {
  return { access_token: tokens.access_token, token_type: tokens.token_type, expires_at: tokens.expires_at, ...(tokens.scope !== undefined && { scope: tokens.scope }) }
}

/**
 * The session after an exchange: the new access token under its key, and the refresh token
 * rotated in the same write when the IdP rotated it. An online refresh token is not rotated:
 * the answer carries none and the stored one is kept.
 */
function mergeTokens (record: SessionRecord, tokens: TokenSet, tokenKey: string, nowSeconds: number): SessionRecord {
  return {
    ...record,
    refresh_token: tokens.refresh_token ?? record.refresh_token,
    ...(tokens.id_token !== undefined && { id_token: tokens.id_token }),
    tokens: {
      ...record.tokens,
      [tokenKey]: storedAccessToken(tokens),
    },
    refreshed_at: nowSeconds,
    refresh_count: (record.refresh_count ?? 0) + 1,
    // A new ID token may lower the IdP's declared ceiling (session_expiry); never raise it.
    absolute_expires_at: capAbsoluteDeadline(record.absolute_expires_at, tokens.claims),
  }
}
