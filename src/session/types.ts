import type { KeyObject } from 'node:crypto'
import type { DpopKey } from '../dpop.ts'
import type { SessionEndReason } from './end-reason.ts'

/** An access token as stored, for one audience/scope key. Times are epoch seconds. */
export interface StoredAccessToken {
  readonly access_token: string
  readonly token_type: string
  readonly expires_at: number
  /** When bffgate received it: `expires_at - issued_at` is the lifetime the IdP issued. */
  readonly issued_at?: number
  readonly scope?: string
}

/** What a session holds (encrypted at rest). Stored protocol data keeps its spec names. */
export interface SessionRecord {
  readonly v: 1
  /**
   * The frontend the session belongs to (docs/frontends.md): a read for another frontend finds
   * no session. Absent in records written before frontends: the first frontend's.
   */
  readonly frontend?: string
  readonly iss: string
  readonly sub: string
  /** IdP session id from the ID token, when the IdP sends one. */
  readonly sid?: string
  /** ID-token claims shown to the SPA at `/bff/user` (never a token). */
  readonly claims: Readonly<Record<string, unknown>>
  /** Kept for RP-initiated logout (`id_token_hint`). */
  readonly id_token?: string
  readonly refresh_token?: string
  /** Access tokens by token key ('' is the login's default audience). */
  readonly tokens: Readonly<Record<string, StoredAccessToken>>
  readonly created_at: number
  /** The IdP session's absolute end as bffgate tracks it; the local session never outlives it. */
  readonly absolute_expires_at: number
  /** When bffgate last exchanged the refresh token (or logged in): the IdP idle clock restarts then. */
  readonly refreshed_at: number
  /** Successful refresh-token exchanges so far (0 until the first). */
  readonly refresh_count?: number
  /** The session's DPoP key pair (RFC 9449), when DPoP is used. */
  readonly dpop_key?: DpopKey
}

/** A loaded session: its record and the handle to write it back. */
export interface LoadedSession {
  readonly handle: SessionHandle
  readonly record: SessionRecord
  /** Seconds until the local session expires (idle or absolute, whichever is first). */
  readonly expiresIn: number
  /** The same in milliseconds, when the store knows it that precisely. */
  readonly expiresInMs?: number
}

/**
 * Why a cookie names no session: there is no cookie, the cookie is not one of ours (garbage,
 * another format, a secret no longer configured), or it is ours and its session has ended
 * (expired, logged out, tampered with: its record is gone or does not open).
 */
export interface MissingSession {
  readonly missing: 'no_cookie' | 'not_ours' | 'ended'
}

/** How a session is read. */
export interface LoadOptions {
  /** Move the idle deadline (at most once per interval). */
  readonly slide: boolean
  /**
   * The frontend the request is for: a session of another frontend is not found (read as a
   * cookie that is not ours; nothing is slid). Absent: any frontend's (internal reads).
   */
  readonly frontend?: string
}

/** Opaque to callers: names one session in the store. */
export interface SessionHandle {
  readonly storageKey: string
  readonly lockKey: string
  readonly recordKey: KeyObject
}

/** A held refresh lock; its token fences writes (a lock that expired can no longer write). */
export interface SessionLock {
  readonly lockKey: string
  readonly token: string
}

/** A claim taken by {@link SessionStore.claim}. */
export interface Claim {
  release(): Promise<void>
}

/** The session store contract; Redis and memory both implement it (test/contracts/session-store.contract.ts). */
export interface SessionStore {
  /** Writes a new session under a fresh ticket, with its sid/sub indexes; returns the cookie value. */
  create(record: SessionRecord): Promise<{ cookieValue: string; handle: SessionHandle }>
  /**
   * Reads the session a cookie names, or `undefined` when there is none (garbage, tampered,
   * unknown secret, expired). `slide` moves the idle deadline (at most once per interval).
   */
  load(cookieValue: string | undefined, options: LoadOptions): Promise<LoadedSession | undefined>
  /** {@link load}, saying why there is no session (so the caller need not decode the cookie again). */
  find(cookieValue: string | undefined, options: LoadOptions): Promise<LoadedSession | MissingSession>
  /** Reads a session again by its handle (after waiting for another refresher). */
  reload(handle: SessionHandle): Promise<LoadedSession | undefined>
  /**
   * Replaces a session's record, keeping it alive for the idle period, only while `fence`
   * (the session's refresh lock) is still held and the session still exists; false when
   * nothing was written. There is no unfenced update: it could bring back a session that
   * another replica just ended.
   */
  update(handle: SessionHandle, record: SessionRecord, fence: SessionLock): Promise<boolean>
  /**
   * Replaces a session's record only while it still holds `previousRefreshToken` (the one the
   * new record's refresh token replaced): how an exchange whose lock was lost still stores a
   * rotated refresh token, never over a newer one. False when nothing was written.
   */
  updateIfRefreshToken(
    handle: SessionHandle,
    record: SessionRecord,
    previousRefreshToken: string | undefined,
  ): Promise<boolean>
  /** Extends a held lock's lease to `ttlMs` from now; false when the lock is no longer ours. */
  renewLock(lock: SessionLock, ttlMs: number): Promise<boolean>
  /** Takes the session's refresh lock for `ttlMs`, or undefined when another holder has it. */
  lock(handle: SessionHandle, ttlMs: number): Promise<SessionLock | undefined>
  /** Releases a lock if it is still ours. */
  unlock(lock: SessionLock): Promise<void>
  /** Deletes one session and its index entries; every replica hears why (`onSessionsEnded`). */
  delete(handle: SessionHandle, reason?: SessionEndReason): Promise<void>
  /**
   * Deletes every session of `frontend` (the first frontend when absent) bound to that IdP
   * session; returns how many.
   */
  deleteByIdpSession(iss: string, sid: string, reason?: SessionEndReason, frontend?: string): Promise<number>
  /** Deletes every session of that user on `frontend` (the first frontend when absent); returns how many. */
  deleteBySubject(iss: string, sub: string, reason?: SessionEndReason, frontend?: string): Promise<number>
  /** True the first time it is called for `id` within `ttlSeconds` (one-time login state, logout-token jti). */
  claimOnce(namespace: string, id: string, ttlSeconds: number): Promise<boolean>
  /**
   * {@link claimOnce} that can be undone: the claim, or undefined when `id` is claimed already.
   * `release` drops this claim only (not one made after it lapsed), so that a request that
   * claimed an id and then failed leaves its retry possible. When the claim itself fails (an
   * outage: it may still be carried out late), a release is sent after it all the same.
   */
  claim(namespace: string, id: string, ttlSeconds: number): Promise<Claim | undefined>
  /** Calls `listener` with the storage keys of sessions ended by any replica, and why (`ended` when not said). */
  onSessionsEnded(listener: (storageKeys: readonly string[], reason: SessionEndReason) => void): void
  ping(): Promise<void>
  close(): Promise<void>
}
