import { createHmac, createSecretKey, randomBytes } from 'node:crypto'
import { deriveKey, hmac, open, seal } from '../crypto.ts'
import type { SessionBackend } from './backend.ts'
import { createHandleCache, createOpenedRecords } from './caches.ts'
import { slideIntervalMs } from './idle-slide.ts'
import type { SessionEndReason } from './end-reason.ts'
import type { KeyNames } from './keys.ts'
import type { Keyring } from './keyring.ts'
import { decodeRecord, encodeRecord } from './record-codec.ts'
import { createTicket, decodeTicket, encodeTicket, TICKET_LENGTH, type Ticket } from './ticket.ts'
import { FINGERPRINT_BYTES } from './value-codec.ts'
import type { LoadedSession, MissingSession, SessionHandle, SessionLock, SessionRecord, SessionStore } from './types.ts'

export interface SessionStoreOptions {
  readonly backend: SessionBackend
  readonly keyring: Keyring
  readonly keys: KeyNames
  /** Local idle timeout in seconds. */
  readonly idleSeconds: number
  /**
   * The first frontend's name (docs/frontends.md): its sessions, and records that name no
   * frontend (written before frontends), use the index keys of a single-frontend deployment;
   * every other frontend's sessions are indexed under its name. `default` when absent.
   */
  readonly primaryFrontend?: string
  /** Clock in epoch milliseconds; injected for tests. */
  readonly now?: () => number
}

const NOTHING: Promise<undefined> = Promise.resolve(undefined)
const NO_COOKIE: MissingSession = Object.freeze({ missing: 'no_cookie' })
const NOT_OURS: MissingSession = Object.freeze({ missing: 'not_ours' })
const ENDED: MissingSession = Object.freeze({ missing: 'ended' })

/**
 * The session store over any {@link SessionBackend}: the key is an HMAC of the
 * ticket's id under a server secret, the record is sealed with a key derived from the
 * ticket's own secret (a dump of the store alone yields no token), and the record lives until
 * the earlier of its idle and absolute deadlines.
 */
export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const { backend, keyring, keys } = options
  const now = options.now ?? Date.now
  const idleMs = options.idleSeconds * 1000
  // Slide the idle deadline at most this often: a write per request would double Redis load.
  const slideInterval = slideIntervalMs(idleMs)

  const handleFor = (ticket: Ticket, idKey: Buffer): SessionHandle => {
    const hashedId = hmac(idKey, ticket.id).subarray(0, 20).toString('base64url')
    return {
      storageKey: keys.session(hashedId),
      lockKey: keys.refreshLock(hashedId),
      recordKey: createSecretKey(deriveKey(ticket.secret, 'bffgate session record v1', ticket.id)),
    }
  }

  const primaryFrontend = options.primaryFrontend ?? 'default'
  /** The index namespace of a frontend's sessions: none for the first frontend (unchanged keys). */
  const indexScope = (frontend: string | undefined): string | undefined =>
    frontend === primaryFrontend ? undefined : frontend
  const indexKeysOf = (record: SessionRecord): string[] => {
    const scope = indexScope(record.frontend)
    const indexes = [keys.subIndex(record.iss, record.sub, scope)]
    if (record.sid !== undefined) indexes.push(keys.sidIndex(record.iss, record.sid, scope))
    return indexes
  }

  /** Remaining lifetime: the earlier of the idle and the absolute deadline. */
  const ttlMsFor = (record: SessionRecord): number => Math.min(idleMs, record.absolute_expires_at * 1000 - now())

  /**
   * What the backend can compare without opening the record: an HMAC of its refresh token
   * under the record's own key (so it says nothing about the token, and differs per session).
   */
  const refreshTokenFingerprint = (handle: SessionHandle, refreshToken: string | undefined): Buffer =>
    createHmac('sha256', handle.recordKey)
      .update(`bffgate refresh token v1\u0000${refreshToken ?? ''}`)
      .digest()
      .subarray(0, FINGERPRINT_BYTES)

  /**
   * Without a condition only for a new session; an existing one is written only under its
   * lock, or (a result whose lock was lost) only while it still holds the refresh token the
   * new record's replaced.
   */
  const write = async (
    handle: SessionHandle,
    record: SessionRecord,
    condition?: { fence: SessionLock } | { previousRefreshToken: string | undefined },
  ): Promise<boolean> => {
    const ttlMs = ttlMsFor(record)
    if (ttlMs <= 0) return false
    const sealed = seal(handle.recordKey, encodeRecord(record), Buffer.from(handle.storageKey))
    const fingerprint = refreshTokenFingerprint(handle, record.refresh_token)
    if (condition === undefined) await backend.write(handle.storageKey, sealed, indexKeysOf(record), ttlMs, fingerprint)
    else if ('fence' in condition) {
      if (
        !(await backend.writeFenced(
          handle.storageKey,
          sealed,
          indexKeysOf(record),
          ttlMs,
          condition.fence,
          fingerprint,
        ))
      )
        return false
    } else if (
      !(await backend.writeIfFingerprint(
        handle.storageKey,
        sealed,
        indexKeysOf(record),
        ttlMs,
        refreshTokenFingerprint(handle, condition.previousRefreshToken),
        fingerprint,
      ))
    )
      return false
    opened.remember(handle, sealed, record)
    return true
  }

  const opened = createOpenedRecords(now)
  const openRecord = (handle: SessionHandle, sealed: Buffer): SessionRecord | undefined => {
    const cached = opened.get(handle, sealed)
    if (cached !== undefined) return cached
    const plaintext = open(handle.recordKey, sealed, Buffer.from(handle.storageKey))
    if (plaintext === undefined) return undefined
    const record = decodeRecord(plaintext)
    opened.remember(handle, sealed, record)
    return record
  }

  /**
   * The session under `handle`, or `gone` when its record is not there (or does not open), or
   * `foreign` when it belongs to another frontend than `frontend` (nothing slid).
   */
  const read = async <Gone, Foreign>(
    handle: SessionHandle,
    slide: boolean,
    gone: Gone,
    frontend: string | undefined,
    foreign: Foreign,
  ): Promise<LoadedSession | Gone | Foreign> => {
    const entry = await backend.read(handle.storageKey)
    if (entry === undefined) return gone
    const record = openRecord(handle, entry.sealed)
    if (record === undefined) return gone
    // A cookie of one frontend never works on another, whatever name it is sent under.
    if (frontend !== undefined && (record.frontend ?? primaryFrontend) !== frontend) return foreign
    let ttlMs = entry.ttlMs
    if (slide) {
      const fullTtlMs = ttlMsFor(record)
      if (fullTtlMs - ttlMs >= slideInterval) {
        await backend.expire(handle.storageKey, indexKeysOf(record), fullTtlMs)
        ttlMs = fullTtlMs
      }
    }
    return { handle, record, expiresIn: Math.max(0, Math.floor(ttlMs / 1000)), expiresInMs: Math.max(0, ttlMs) }
  }

  const handles = createHandleCache(now)

  /** The handle a cookie names, or why it names none; derived once per cookie and cached. */
  const handleOf = (cookieValue: string | undefined): SessionHandle | MissingSession => {
    if (cookieValue === undefined) return NO_COOKIE
    // Anything but a ticket's length is refused before any hashing (garbage cookies cost nothing).
    if (cookieValue.length !== TICKET_LENGTH) return NOT_OURS
    const cacheKey = handles.keyOf(cookieValue)
    const cached = handles.get(cacheKey)
    if (cached !== undefined) return cached
    const ticket = decodeTicket(cookieValue)
    if (ticket === undefined) return NOT_OURS
    const secretKeys = keyring.byKid(ticket.kid)
    if (secretKeys === undefined) return NOT_OURS
    const handle = handleFor(ticket, secretKeys.sessionIdKey)
    handles.set(cacheKey, handle)
    return handle
  }

  const deleteIndexed = async (indexKey: string, reason?: SessionEndReason): Promise<number> =>
    backend.remove(await backend.members(indexKey), reason)

  return {
    async create(record) {
      const ticket = createTicket(keyring.current.kid)
      const handle = handleFor(ticket, keyring.current.sessionIdKey)
      if (!(await write(handle, record)))
        throw new RangeError('session would expire at once (absolute deadline passed)')
      const cookieValue = encodeTicket(ticket)
      handles.set(handles.keyOf(cookieValue), handle)
      return { cookieValue, handle }
    },

    load(cookieValue, { slide, frontend }): Promise<LoadedSession | undefined> {
      const handle = handleOf(cookieValue)
      return 'missing' in handle ? NOTHING : read(handle, slide, undefined, frontend, undefined)
    },

    find(cookieValue, { slide, frontend }): Promise<LoadedSession | MissingSession> {
      const handle = handleOf(cookieValue)
      return 'missing' in handle ? Promise.resolve(handle) : read(handle, slide, ENDED, frontend, NOT_OURS)
    },

    reload: (handle) => read(handle, false, undefined, undefined, undefined),

    async update(handle, record, fence) {
      if (await write(handle, record, { fence })) return true
      // Past its absolute deadline: the session is over.
      if (ttlMsFor(record) <= 0) await backend.remove([handle.storageKey], 'absolute_timeout')
      return false
    },

    async updateIfRefreshToken(handle, record, previousRefreshToken) {
      if (await write(handle, record, { previousRefreshToken })) return true
      if (ttlMsFor(record) <= 0) await backend.remove([handle.storageKey], 'absolute_timeout')
      return false
    },

    renewLock: (lock, ttlMs) => backend.renewLock(lock.lockKey, lock.token, ttlMs),

    async lock(handle, ttlMs) {
      const token = randomBytes(16).toString('base64url')
      return (await backend.acquireLock(handle.lockKey, token, ttlMs)) ? { lockKey: handle.lockKey, token } : undefined
    },

    unlock: (lock) => backend.releaseLock(lock.lockKey, lock.token),

    async delete(handle, reason) {
      await backend.remove([handle.storageKey], reason)
    },

    deleteByIdpSession: (iss, sid, reason, frontend) =>
      deleteIndexed(keys.sidIndex(iss, sid, indexScope(frontend ?? primaryFrontend)), reason),
    deleteBySubject: (iss, sub, reason, frontend) =>
      deleteIndexed(keys.subIndex(iss, sub, indexScope(frontend ?? primaryFrontend)), reason),

    async claimOnce(namespace, id, ttlSeconds) {
      return backend.setIfAbsent(keys.once(namespace, id), Math.max(1, ttlSeconds) * 1000)
    },

    async claim(namespace, id, ttlSeconds) {
      // A lock's primitives: SET NX with a token of ours, and a release that deletes only that token.
      const key = keys.once(namespace, id)
      const token = randomBytes(16).toString('base64url')
      let taken
      try {
        taken = await backend.acquireLock(key, token, Math.max(1, ttlSeconds) * 1000)
      } catch (err) {
        // An outcome unknown (a command that timed out may still run once Redis answers again):
        // the release goes after it, on the same connection, so a claim it made is dropped.
        backend.releaseLock(key, token).catch(() => {})
        throw err
      }
      if (!taken) return undefined
      return { release: () => backend.releaseLock(key, token) }
    },

    onSessionsEnded: (listener) => backend.onRemoved(listener),
    ping: () => backend.ping(),
    close: () => backend.close(),
  }
}
