import { hash } from 'node:crypto'
import { IV_BYTES, TAG_BYTES } from '../crypto.ts'
import { RandomEvictionMap } from './bounded-map.ts'
import type { SessionHandle, SessionRecord } from './types.ts'

/*
 * The session store's two caches: work saved per request, never a second source of truth.
 * Every read still goes to the backend (a session ended on another replica is gone here at
 * once); what is cached is the CPU around it (bench/README.md has the measurements).
 */

/**
 * How long a cookie's derived handle, and a record opened with it, are reused: a minute on
 * average, each entry between 45 and 75 s at random. With one lifetime for all, the sessions
 * first seen together (every session in use, after a restart) all expired together a minute
 * later, and their keys were derived and their records opened again in one burst: thousands of
 * short-lived native allocations (ciphers, zlib streams) between two collections, which grew
 * the allocator's heap by tens of MiB that it kept (bench/README.md, fifth pass).
 */
export const CACHE_TTL_MIN_MS = 45_000
export const CACHE_TTL_MAX_MS = 75_000
const cacheLifetimeMs = (): number => CACHE_TTL_MIN_MS + Math.random() * (CACHE_TTL_MAX_MS - CACHE_TTL_MIN_MS)
/**
 * Bound on cached handles. A handle is small (two key names and a 32-byte record key:
 * ~0.5 KiB of V8 heap, ~1.7 KiB of resident memory in all with its native key object,
 * bench/README.md), and a miss costs ~15 µs of hashing and key derivation, so it is sized
 * for 100,000 sessions in use at once: at most ~170 MiB. When full, a random one makes room
 * (see RandomEvictionMap: evicting the oldest made every lookup miss once the sessions in use
 * outnumbered the bound, even by one).
 */
export const HANDLE_CACHE_MAX = 100_000
/**
 * Bound on opened records, apart from the handles: a record is a few KiB (its tokens as
 * strings, parsed claims), ~10 times a handle, so fewer are kept (~40 MiB at most). A miss costs
 * a decryption, an inflate and a parse (~30 µs). Random eviction, as above.
 */
export const OPENED_RECORDS_MAX = 10_000

interface CachedHandle {
  readonly handle: SessionHandle
  readonly expiresAt: number
}

/**
 * Handles by cookie: deriving one (an HMAC for the key, HKDF for the record key) is costly,
 * so it is cached briefly per cookie. Keyed by a hash of the cookie, so a heap dump does not
 * list live cookie values. The keyring is fixed for the life of the process, so a cached
 * handle stays valid.
 */
export function createHandleCache(now: () => number, max = HANDLE_CACHE_MAX) {
  const handles = new RandomEvictionMap<string, CachedHandle>(max)
  return {
    /** The key a cookie's handle is cached under. */
    keyOf: (cookieValue: string): string => hash('sha256', cookieValue, 'base64'),
    get(cacheKey: string): SessionHandle | undefined {
      const cached = handles.get(cacheKey)
      if (cached === undefined) return undefined
      if (cached.expiresAt > now()) return cached.handle
      handles.delete(cacheKey)
      return undefined
    },
    set(cacheKey: string, handle: SessionHandle): void {
      handles.set(cacheKey, { handle, expiresAt: now() + cacheLifetimeMs() })
    },
    get size(): number {
      return handles.size
    },
  }
}

/** A record this process opened, and the sealing it came from. */
interface OpenedRecord {
  /** IV and GCM tag of the sealed record, as seven 32-bit words (see `fingerprintOf`). */
  readonly fingerprint: readonly number[]
  readonly sealedLength: number
  readonly record: SessionRecord
  readonly expiresAt: number
}

const FINGERPRINT_WORDS = (IV_BYTES + TAG_BYTES) / 4

/**
 * Records opened by this process: when the backend returns the very sealing this process
 * opened last time with the same handle (same random IV and GCM tag, same length), the record
 * is the one decrypted and parsed then. Any write seals anew with a fresh IV, so a changed
 * record never matches. Opened records are dropped after about a minute. Keyed by the handle
 * itself, so by its record key: a cookie with the same id but another secret names the same
 * storage key, and still fails to open it. At most `max` entries, bounded on their own (ten times
 * as many handles are kept); an entry keeps its handle alive, so at most `max` handles more.
 */
export function createOpenedRecords(now: () => number, max = OPENED_RECORDS_MAX) {
  const opened = new RandomEvictionMap<SessionHandle, OpenedRecord>(max)
  /** The `i`th 32-bit word of a sealing's IV and tag (the tag is its last bytes). */
  const wordOf = (sealed: Buffer, i: number): number =>
    sealed.readInt32LE(i < IV_BYTES / 4 ? i * 4 : sealed.length - TAG_BYTES + (i * 4 - IV_BYTES))
  /**
   * Small integers in a plain array (~110 bytes of V8 heap): no native allocation per cached
   * record. A Buffer fingerprint cost a malloc'd backing store each (and a typed array ~250
   * bytes of heap), long-lived among the transient allocations of each record open, which kept
   * the allocator's heap from shrinking (bench/README.md, fifth pass).
   */
  const fingerprintOf = (sealed: Buffer): number[] =>
    Array.from({ length: FINGERPRINT_WORDS }, (_, i) => wordOf(sealed, i))
  const sameSealing = (cached: OpenedRecord, sealed: Buffer): boolean => {
    if (cached.sealedLength !== sealed.length) return false
    for (let i = 0; i < FINGERPRINT_WORDS; i++) if (cached.fingerprint[i] !== wordOf(sealed, i)) return false
    return true
  }
  return {
    /** The record opened from exactly this sealing, if this process opened (or wrote) it lately. */
    get(handle: SessionHandle, sealed: Buffer): SessionRecord | undefined {
      const cached = opened.get(handle)
      return cached !== undefined && cached.expiresAt > now() && sameSealing(cached, sealed) ? cached.record : undefined
    },
    /** After an open, and after a write: the next read of what this process just sealed needs no decryption. */
    remember(handle: SessionHandle, sealed: Buffer, record: SessionRecord): void {
      opened.set(handle, {
        fingerprint: fingerprintOf(sealed),
        sealedLength: sealed.length,
        record,
        expiresAt: now() + cacheLifetimeMs(),
      })
    },
    get size(): number {
      return opened.size
    },
  }
}
