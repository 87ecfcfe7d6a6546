import type { SessionBackend } from './backend.ts'
import { deriveKey, hmac, open, seal } from './crypto.ts'
import type { KeyNames } from './keys.ts'
import type { Keyring } from './keyring.ts'
import { createTicket, decodeTicket, encodeTicket, TICKET_LENGTH, type Ticket } from './ticket.ts'
import { createSecretKey, hash, randomBytes } from 'node:crypto'
import type { LoadedSession, SessionHandle, SessionLock, SessionRecord, SessionStore } from './types.ts'

export interface SessionStoreOptions {
  readonly backend: SessionBackend
  readonly keyring: Keyring
  readonly keys: KeyNames
  /** Local idle timeout in seconds. */
  readonly idleSeconds: number
  /** Clock in epoch milliseconds; injected for tests. */
  readonly now?: () => number
}

/** How long a cookie's derived handle is reused without deriving it again. */
const HANDLE_CACHE_TTL_MS = 60_000
/** Bound on cached handles (a few hundred bytes each); the oldest go first. */
const HANDLE_CACHE_MAX = 20_000

interface CachedHandle {
  readonly handle: SessionHandle
  readonly expiresAt: number
}

/**
 * The session store of design §4 over any {@link SessionBackend}: the key is an HMAC of the
 * ticket's id under a server secret, the record is sealed with a key derived from the
 * ticket's own secret (a dump of the store alone yields no token), and the record lives until
 * the earlier of its idle and absolute deadlines.
 */
export function createSessionStore (options: SessionStoreOptions): SessionStore {
  const { backend, keyring, keys } = options
  const now = options.now ?? Date.now
  const idleMs = options.idleSeconds * 1000
  // Slide the idle deadline at most this often: a write per request would double Redis load.
  const slideIntervalMs = Math.min(60_000, Math.max(1000, idleMs / 10))

  const handleFor = (ticket: Ticket, idKey: Buffer): SessionHandle => {
    const hashedId = hmac(idKey, ticket.id).subarray(0, 20).toString('base64url')
    return {
      storageKey: keys.session(hashedId),
      lockKey: keys.refreshLock(hashedId),
      recordKey: createSecretKey(deriveKey(ticket.secret, 'bffgate session record v1', ticket.id)),
    }
  }

  const indexKeysOf = (record: SessionRecord): string[] => {
    const indexes = [keys.subIndex(record.iss, record.sub)]
    if (record.sid !== undefined) indexes.push(keys.sidIndex(record.iss, record.sid))
    return indexes
  }

  /** Remaining lifetime: the earlier of the idle and the absolute deadline. */
  const ttlMsFor = (record: SessionRecord): number => Math.min(idleMs, record.absolute_expires_at * 1000 - now())

  /** Without a fence only for a new session; an existing one is written only under its lock. */
  const write = async (handle: SessionHandle, record: SessionRecord, fence?: SessionLock): Promise<boolean> => {
    const ttlMs = ttlMsFor(record)
    if (ttlMs <= 0) return false
    const sealed = seal(handle.recordKey, Buffer.from(JSON.stringify(record)), Buffer.from(handle.storageKey))
    if (fence !== undefined) return backend.writeFenced(handle.storageKey, sealed, indexKeysOf(record), ttlMs, fence)
    await backend.write(handle.storageKey, sealed, indexKeysOf(record), ttlMs)
    return true
  }

  const read = async (handle: SessionHandle, slide: boolean): Promise<LoadedSession | undefined> => {
    const entry = await backend.read(handle.storageKey)
    if (entry === undefined) return undefined
    const plaintext = open(handle.recordKey, entry.sealed, Buffer.from(handle.storageKey))
    if (plaintext === undefined) return undefined
    const record = JSON.parse(plaintext.toString('utf8')) as SessionRecord
    let ttlMs = entry.ttlMs
    if (slide) {
      const fullTtlMs = ttlMsFor(record)
      if (fullTtlMs - ttlMs >= slideIntervalMs) {
        await backend.expire(handle.storageKey, indexKeysOf(record), fullTtlMs)
        ttlMs = fullTtlMs
      }
    }
    return { handle, record, expiresIn: Math.max(0, Math.floor(ttlMs / 1000)) }
  }

  // Deriving a handle (an HMAC for the key, HKDF for the record key) was a fifth of a proxied
  // request's CPU. Cached briefly per cookie: keys derived from the ticket, never the record,
  // which stays sealed in the store and is opened per request. The map is keyed by a hash of
  // the cookie, so a heap dump does not list live cookie values.
  const handles = new Map<string, CachedHandle>()
  const cacheKeyOf = (cookieValue: string): string => hash('sha256', cookieValue, 'base64')
  const remember = (cacheKey: string, handle: SessionHandle): void => {
    if (handles.size >= HANDLE_CACHE_MAX) handles.delete(handles.keys().next().value!)
    handles.set(cacheKey, { handle, expiresAt: now() + HANDLE_CACHE_TTL_MS })
  }

  const deleteIndexed = async (indexKey: string): Promise<number> => backend.remove(await backend.members(indexKey))

  return {
    async create (record) {
      const ticket = createTicket(keyring.current.kid)
      const handle = handleFor(ticket, keyring.current.sessionIdKey)
      if (!(await write(handle, record))) throw new RangeError('session would expire at once (absolute deadline passed)')
      const cookieValue = encodeTicket(ticket)
      remember(cacheKeyOf(cookieValue), handle)
      return { cookieValue, handle }
    },

    async load (cookieValue, { slide }): Promise<LoadedSession | undefined> {
      // Anything but a ticket's length is refused before any hashing (garbage cookies cost nothing).
      if (cookieValue === undefined || cookieValue.length !== TICKET_LENGTH) return undefined
      const cacheKey = cacheKeyOf(cookieValue)
      // The keyring is fixed for the life of the process, so a cached handle stays valid.
      const cached = handles.get(cacheKey)
      if (cached !== undefined && cached.expiresAt > now()) return read(cached.handle, slide)
      if (cached !== undefined) handles.delete(cacheKey)
      const ticket = decodeTicket(cookieValue)
      if (ticket === undefined) return undefined
      const secretKeys = keyring.byKid(ticket.kid)
      if (secretKeys === undefined) return undefined
      const handle = handleFor(ticket, secretKeys.sessionIdKey)
      remember(cacheKey, handle)
      return read(handle, slide)
    },

    reload: (handle) => read(handle, false),

    async update (handle, record, fence) {
      if (await write(handle, record, fence)) return true
      // Past its absolute deadline: the session is over.
      if (ttlMsFor(record) <= 0) await backend.remove([handle.storageKey])
      return false
    },

    async lock (handle, ttlMs) {
      const token = randomBytes(16).toString('base64url')
      return (await backend.acquireLock(handle.lockKey, token, ttlMs)) ? { lockKey: handle.lockKey, token } : undefined
    },

    unlock: (lock) => backend.releaseLock(lock.lockKey, lock.token),

    async delete (handle) {
      await backend.remove([handle.storageKey])
    },

    deleteByIdpSession: (iss, sid) => deleteIndexed(keys.sidIndex(iss, sid)),
    deleteBySubject: (iss, sub) => deleteIndexed(keys.subIndex(iss, sub)),

    async claimOnce (namespace, id, ttlSeconds) {
      return backend.setIfAbsent(keys.once(namespace, id), Math.max(1, ttlSeconds) * 1000)
    },

    onSessionsEnded: (listener) => backend.onRemoved(listener),
    ping: () => backend.ping(),
    close: () => backend.close(),
  }
}
