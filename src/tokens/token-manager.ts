import { setTimeout as sleep } from 'node:timers/promises'
import { BffError } from '../errors.ts'
import { noEvents, type GatewayEvents } from '../events.ts'
import { OidcError, type OidcClient, type TokenSet } from '../oidc/client.ts'
import { bffErrorForOidcFailure, IDP_RETRY_AFTER_SECONDS } from '../oidc/failures.ts'
import { createSessionEnding, type SessionEnding } from '../session/ending.ts'
import type {
  LoadedSession,
  SessionHandle,
  SessionLock,
  SessionRecord,
  SessionStore,
  StoredAccessToken,
} from '../session/types.ts'
import { mergeTokens } from './session-record.ts'
import {
  decideRefresh,
  isStillValid,
  issuedLifetimeSeconds,
  mustWaitForRefresh,
  skewCapped,
  type RefreshPolicy,
  type RefreshReason,
} from './refresh-policy.ts'

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
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

export interface TokenManagerOptions {
  readonly store: SessionStore
  readonly oidc: Pick<OidcClient, 'refresh'>
  readonly policy: RefreshPolicy
  /**
   * Lease of the cross-replica refresh lock, ms: renewed every third of it while its holder
   * exchanges, so a crashed holder (or one cut off from Redis) blocks waiters no longer.
   */
  readonly lockTtlMs: number
  /** Longest a token-endpoint call can take, ms (the OIDC timeout); bounds how long a waiter waits. */
  readonly exchangeTimeoutMs: number
  /** Epoch milliseconds. */
  readonly now?: () => number
  readonly log: TokenManagerLog
  readonly events?: GatewayEvents
  /** Where sessions end (a refresh token refused, nothing left to renew with); made from `store` when absent. */
  readonly ending?: SessionEnding
}

export interface TokenManager {
  /** A valid access token for the session and route, exchanging the refresh token first when needed. */
  getAccessToken(session: LoadedSession, request?: TokenRequest): Promise<AccessTokenResult>
}

const DEFAULT_REQUEST: TokenRequest = { tokenKey: '' }
/** After a background refresh failed (or found the lock held), the session's next one waits this long. */
const BACKGROUND_BACKOFF_MS = 2000
/** Bound on sessions remembered in the background back-off (the oldest go first). */
const BACKOFF_MAX = 10_000

type Outcome =
  | { readonly kind: 'refreshed'; readonly record: SessionRecord }
  | { readonly kind: 'ended'; readonly cause?: unknown }
  | { readonly kind: 'failed'; readonly cause: unknown }
  /** A background refresh found the lock held elsewhere and left the exchange to its holder. */
  | { readonly kind: 'busy' }

/**
 * The token manager (docs/architecture.md: a refresh across replicas). A refresh token is exchanged exactly once per need, however
 * many requests race for it: requests of one session in this process share one exchange
 * (a shared promise), and replicas take turns through a Redis lock whose token fences the
 * write. The lock is a short lease renewed while its holder exchanges, so it covers the whole
 * exchange however slow, and a dead holder blocks no longer than one lease. Whoever takes the
 * lock re-reads the session first, because another replica may already have refreshed;
 * whoever waits polls the session until the holder's result appears (or the lease lapses),
 * then uses it. A result whose lease was lost anyway is stored by compare-and-set on the
 * refresh token it replaced, so a rotated refresh token is never dropped.
 *
 * Only a request with no usable token waits (missing, expired, or just refused upstream); a
 * token inside the skew but still valid is used at once while one refresh per session runs in
 * the background.
 */
export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { store, oidc, policy, log, lockTtlMs } = options
  const events = options.events ?? noEvents
  const now = options.now ?? Date.now
  const nowSeconds = () => Math.floor(now() / 1000)
  const flights = new Map<string, Promise<Outcome>>()

  const ending = options.ending ?? createSessionEnding({ store, events, log })

  const needs = (record: SessionRecord, request: TokenRequest) =>
    decideRefresh(record, request.tokenKey, nowSeconds(), policy, request.rejectedToken)

  let skewReported = false
  /** Reports once per process a configured skew that does not fit the tokens the IdP issues. */
  const reportSkew = (token: StoredAccessToken | undefined): void => {
    if (skewReported || token === undefined || !skewCapped(token, policy.skewSeconds)) return
    skewReported = true
    const lifetime = issuedLifetimeSeconds(token)!
    events.refreshSkewCapped(policy.skewSeconds, lifetime)
    log.warn(
      { event: 'token.skew_capped', configuredSkewSeconds: policy.skewSeconds, issuedLifetimeSeconds: lifetime },
      'BFF_REFRESH_SKEW_SECONDS is longer than a third of the access-token lifetime the IdP issues; the skew is capped to fit (lower it, or lengthen the tokens)',
    )
  }

  /** Renews the lock's lease every third of it until stopped; tells whether the lease held throughout. */
  const keepLease = (lock: SessionLock) => {
    let lost = false
    let renewedAt = now()
    const markLost = (why: string) => {
      if (lost) return
      lost = true
      events.refreshLeaseLost()
      log.warn(
        { event: 'token.lease_lost', lockTtlMs, why },
        "the refresh lock's lease was lost during an exchange; its result will be stored by compare-and-set on the refresh token",
      )
    }
    const timer = setInterval(
      () => {
        if (lost) return
        if (now() - renewedAt >= lockTtlMs) return markLost('not renewed in time')
        store.renewLock(lock, lockTtlMs).then(
          (held) => {
            if (held) renewedAt = now()
            else markLost('taken or expired')
          },
          () => {
            if (now() - renewedAt >= lockTtlMs) markLost('store unavailable')
          },
        )
      },
      Math.max(50, Math.floor(lockTtlMs / 3)),
    )
    timer.unref()
    return {
      get lost() {
        return lost || now() - renewedAt >= lockTtlMs
      },
      stop: () => clearInterval(timer),
    }
  }

  /** Stores an exchange's result: under the lock while it is held, else by compare-and-set. */
  const storeResult = async (
    handle: SessionHandle,
    previous: SessionRecord,
    updated: SessionRecord,
    lock: SessionLock,
    leaseLost: boolean,
  ): Promise<Outcome | undefined> => {
    if (!leaseLost && (await store.update(handle, updated, lock))) return undefined
    if (await store.updateIfRefreshToken(handle, updated, previous.refresh_token)) return undefined
    if ((await store.reload(handle)) === undefined) return { kind: 'ended' }
    // Another holder stored a newer refresh token meanwhile: theirs stays (ours came from the
    // same old one). The access token we got is still good for this request.
    log.warn(
      { event: 'token.result_not_stored' },
      'a refresh result was not stored: the session already holds a newer refresh token',
    )
    return undefined
  }

  const exchangeHoldingLock = async (
    handle: SessionHandle,
    request: TokenRequest,
    lock: SessionLock,
  ): Promise<Outcome> => {
    const lease = keepLease(lock)
    try {
      // Re-read after taking the lock: another replica may have refreshed while we waited for it.
      const current = await store.reload(handle)
      if (current === undefined) return { kind: 'ended' }
      const decision = needs(current.record, request)
      if (!decision.refresh) return { kind: 'refreshed', record: current.record }
      // A lease lost before the call: someone else may hold the lock now; never exchange beside them.
      if (lease.lost) return { kind: 'failed', cause: new Error('the refresh lock was lost before the exchange') }
      const record = current.record
      let tokens: TokenSet
      try {
        const dpop = request.dpop === true ? record.dpop_key : undefined
        if (request.dpop === true && dpop === undefined)
          log.warn(
            { event: 'token.dpop_key_missing' },
            'a DPoP route, but the session has no DPoP key (it predates DPoP): the token will be a bearer token',
          )
        tokens = await oidc.refresh(
          record.refresh_token!,
          refreshParameters(request),
          dpop !== undefined ? { dpop } : {},
        )
      } catch (err) {
        events.tokenExchange(
          err instanceof OidcError && err.kind !== 'invalid_response' ? err.kind : 'rejected',
          decision.reason,
        )
        if (err instanceof OidcError && err.kind === 'invalid_grant') {
          if ((record.refresh_count ?? 0) === 0) {
            log.warn(
              { event: 'token.first_exchange_invalid_grant' },
              'the first refresh of a session got invalid_grant: probably a misconfiguration (e.g. an Auth0 API with ephemeral sessions, which online refresh tokens do not support)',
            )
          }
          await ending.endSession({ handle, record }, 'invalid_grant')
          return { kind: 'ended', cause: err }
        }
        // The IdP answered, but its answer failed a check (e.g. the ID token's): a refresh token
        // it rotated is already spent on its side, so keep the new one (and nothing else of it).
        const issued = err instanceof OidcError ? err.issuedRefreshToken : undefined
        if (issued !== undefined && issued !== record.refresh_token) {
          const kept = await storeResult(handle, record, { ...record, refresh_token: issued }, lock, lease.lost)
          if (kept !== undefined) return kept
          log.warn(
            { event: 'token.rotated_kept_after_invalid_response' },
            'a refresh answer failed validation; its rotated refresh token was kept, its other tokens discarded',
          )
        }
        log.warn(
          {
            event: 'token.refresh_failed',
            reason: decision.reason,
            kind: err instanceof OidcError ? err.kind : 'unknown',
            err,
          },
          'refresh failed',
        )
        return { kind: 'failed', cause: err }
      }
      events.tokenExchange('success', decision.reason)
      const updated = mergeTokens(record, tokens, request.tokenKey, nowSeconds())
      const stored = await storeResult(handle, record, updated, lock, lease.lost)
      if (stored !== undefined) return stored
      log.debug(
        {
          event: 'token.refreshed',
          reason: decision.reason,
          rotated: tokens.refresh_token !== undefined && tokens.refresh_token !== record.refresh_token,
        },
        'token refreshed',
      )
      return { kind: 'refreshed', record: updated }
    } finally {
      lease.stop()
    }
  }

  /**
   * Takes the session's lock, or waits for its holder's result (bounded); in the background,
   * leaves the exchange to a holder elsewhere rather than waiting.
   */
  const refreshAcrossReplicas = async (
    session: LoadedSession,
    request: TokenRequest,
    background: boolean,
  ): Promise<Outcome> => {
    const giveUpAt = now() + lockTtlMs + options.exchangeTimeoutMs + 1000
    let pause = 10
    let waited = false
    for (;;) {
      const lock = await store.lock(session.handle, lockTtlMs)
      if (lock !== undefined) {
        if (waited) {
          // We waited for a holder, and its lease lapsed with no result (checked just before).
          events.refreshLockTakenOver()
          log.warn(
            { event: 'token.lock_taken_over', lockTtlMs },
            'took over a refresh lock whose holder left no result (it failed, died, or lost Redis)',
          )
        }
        try {
          return await exchangeHoldingLock(session.handle, request, lock)
        } finally {
          await store
            .unlock(lock)
            .catch((err: unknown) =>
              log.warn(
                { event: 'token.unlock_failed', err },
                'could not release the refresh lock; it lapses by itself',
              ),
            )
        }
      }
      if (background) return { kind: 'busy' }
      // Another replica holds the lock: wait for its result rather than exchanging twice.
      if (!waited) events.refreshLockWaited()
      waited = true
      await sleep(pause)
      pause = Math.min(pause * 2, 100)
      const current = await store.reload(session.handle)
      if (current === undefined) return { kind: 'ended' }
      if (!needs(current.record, request).refresh) return { kind: 'refreshed', record: current.record }
      if (now() > giveUpAt) return { kind: 'failed', cause: new Error('timed out waiting for the refresh lock') }
    }
  }

  const toResult = async (
    outcome: Outcome,
    session: LoadedSession,
    request: TokenRequest,
    reason: RefreshReason,
  ): Promise<AccessTokenResult> => {
    if (outcome.kind === 'refreshed') {
      const token = outcome.record.tokens[request.tokenKey]
      if (token !== undefined) return { kind: 'bearer', token }
      return {
        kind: 'error',
        error: new BffError('BFF_ERR_IDP_UNAVAILABLE', { retryAfter: IDP_RETRY_AFTER_SECONDS }),
        sessionEnded: false,
      }
    }
    if (outcome.kind === 'ended')
      return {
        kind: 'error',
        error: new BffError('BFF_ERR_SESSION_ENDED', { cause: outcome.cause }),
        sessionEnded: true,
      }
    // Transient failure: never tear down; keep using the current token while it is valid.
    const current = session.record.tokens[request.tokenKey]
    if (reason !== 'rejected' && isStillValid(current, nowSeconds())) return { kind: 'bearer', token: current }
    return {
      kind: 'error',
      error: bffErrorForOidcFailure(outcome.kind === 'failed' ? outcome.cause : undefined, 'refresh'),
      sessionEnded: false,
    }
  }

  // Sessions whose last background refresh failed or found the lock held elsewhere, until when
  // (epoch ms) the next one waits: an IdP outage must not turn every request into a token call.
  const backoff = new Map<string, number>()
  // And after the IdP itself failed (5xx, 429, timeout), every session's background refresh
  // in this process waits: still-valid tokens carry the traffic, the IdP is not hammered.
  let idpBackoffUntil = 0
  /** Starts one background refresh for the session unless one runs (or failed just now). */
  const refreshInBackground = (session: LoadedSession, request: TokenRequest): void => {
    const key = session.handle.storageKey
    if (flights.has(key)) return
    const until = backoff.get(key)
    if ((until !== undefined && until > now()) || idpBackoffUntil > now()) return
    backoff.delete(key)
    events.backgroundRefreshStarted()
    const promise = refreshAcrossReplicas(session, request, true)
      .catch((cause: unknown): Outcome => ({ kind: 'failed', cause }))
      .finally(() => flights.delete(key))
    flights.set(key, promise)
    promise.then(
      (outcome) => {
        if (outcome.kind === 'refreshed' || outcome.kind === 'ended') return
        if (backoff.size >= BACKOFF_MAX) backoff.delete(backoff.keys().next().value!)
        backoff.set(key, now() + BACKGROUND_BACKOFF_MS)
        if (outcome.kind === 'failed' && outcome.cause instanceof OidcError && outcome.cause.kind === 'transient')
          idpBackoffUntil = now() + BACKGROUND_BACKOFF_MS
        if (outcome.kind === 'failed')
          log.warn(
            { event: 'token.background_refresh_failed', err: outcome.cause },
            'a background refresh failed; the current access token is still valid',
          )
      },
      () => {},
    )
  }

  return {
    async getAccessToken(session, request = DEFAULT_REQUEST) {
      const decision = needs(session.record, request)
      const current = session.record.tokens[request.tokenKey]
      if (!skewReported) reportSkew(current)
      if (!decision.refresh) return { kind: 'bearer', token: current! }
      if (session.record.refresh_token === undefined) {
        if (isStillValid(current, nowSeconds()) && decision.reason !== 'rejected')
          return { kind: 'bearer', token: current }
        if (request.tokenKey !== '' || decision.reason === 'rejected') {
          return {
            kind: 'error',
            error: new BffError('BFF_ERR_SESSION_ENDED', {
              message: 'The session has no refresh token to get a new access token',
            }),
            sessionEnded: false,
          }
        }
        await ending.endSession(session, 'expired')
        return { kind: 'error', error: new BffError('BFF_ERR_SESSION_ENDED'), sessionEnded: true }
      }
      if (!mustWaitForRefresh(decision, current, nowSeconds())) {
        // Still valid: this request goes on with it; the refresh runs beside it, once.
        refreshInBackground(session, request)
        return { kind: 'bearer', token: current! }
      }

      const key = session.handle.storageKey
      for (let round = 0; round < 3; round++) {
        const flight = flights.get(key)
        if (flight === undefined) {
          const promise = refreshAcrossReplicas(session, request, false).finally(() => flights.delete(key))
          flights.set(key, promise)
          return toResult(await promise, session, request, decision.reason)
        }
        // Join the exchange already running for this session in this process.
        events.refreshJoined()
        const outcome = await flight
        if (outcome.kind === 'busy') continue
        if (outcome.kind !== 'refreshed' || !needs(outcome.record, request).refresh)
          return toResult(outcome, session, request, decision.reason)
        // It refreshed another audience's token; ours still needs its own exchange.
        session = { ...session, record: outcome.record }
      }
      return toResult({ kind: 'failed', cause: new Error('refresh did not settle') }, session, request, decision.reason)
    },
  }
}

function refreshParameters(request: TokenRequest): Record<string, string> | undefined {
  if (request.audience === undefined && request.scope === undefined) return undefined
  return {
    // Auth0 names the API `audience`; RFC 8707 names it `resource`.
    ...(request.audience !== undefined && { audience: request.audience, resource: request.audience }),
    ...(request.scope !== undefined && { scope: request.scope }),
  }
}
