import type { SessionEndReason } from './end-reason.ts'

/**
 * The storage primitives a session store needs, so that the session logic (tickets,
 * encryption, deadlines, indexes) is written once over Redis and over memory.
 * Keys are full key names from `keys.ts`; values are opaque bytes.
 */
export interface SessionBackend {
  /** One round trip: the sealed record and its remaining lifetime in ms, or undefined. */
  read(key: string): Promise<{ sealed: Buffer; ttlMs: number } | undefined>
  /**
   * Writes a record with its lifetime and adds its key to each index set, whose lifetime is
   * raised (never lowered) to at least the record's. Index writes come first, so a failure
   * can leave a stale index entry but never a live record missing from its index.
   */
  write(key: string, sealed: Buffer, indexKeys: readonly string[], ttlMs: number, fingerprint?: Buffer): Promise<void>
  /**
   * Replaces an existing record only while `fence` holds the lock with its token (the lock
   * and the record share a hash tag, so this is one atomic step even on Redis Cluster), then
   * raises the indexes' lifetimes. False when the lock was lost: nothing was written.
   */
  writeFenced(
    key: string,
    sealed: Buffer,
    indexKeys: readonly string[],
    ttlMs: number,
    fence: { lockKey: string; token: string },
    fingerprint?: Buffer,
  ): Promise<boolean>
  /**
   * Replaces an existing record only while its stored refresh-token `fingerprint` (written
   * with the record; opaque bytes) equals `expected`: a compare-and-set for a result whose
   * lock was lost. False when nothing was written.
   */
  writeIfFingerprint(
    key: string,
    sealed: Buffer,
    indexKeys: readonly string[],
    ttlMs: number,
    expected: Buffer,
    fingerprint: Buffer,
  ): Promise<boolean>
  /** Extends a lock's lease to `ttlMs` from now only while it still holds `token`; false when lost. */
  renewLock(lockKey: string, token: string, ttlMs: number): Promise<boolean>
  /** Takes a lock if free: `SET key token NX PX ttl`. */
  acquireLock(lockKey: string, token: string, ttlMs: number): Promise<boolean>
  /** Releases a lock only if it still holds `token` (never someone else's). */
  releaseLock(lockKey: string, token: string): Promise<void>
  /** Sets a new lifetime for a record and raises its indexes' lifetimes to match. */
  expire(key: string, indexKeys: readonly string[], ttlMs: number): Promise<void>
  /**
   * Deletes records and removes them from the indexes they were written with, and announces
   * the removal (with `reason`) to every process sharing the store; returns how many existed.
   */
  remove(keys: readonly string[], reason?: SessionEndReason): Promise<number>
  /** The record keys an index holds (possibly stale). */
  members(indexKey: string): Promise<string[]>
  /** Sets `key` only if absent, with a lifetime; true when it was set. */
  setIfAbsent(key: string, ttlMs: number): Promise<boolean>
  /**
   * Calls `listener` with the record keys removed by any process sharing this store (Redis
   * pub/sub), so that each replica can close what it holds for them (WebSockets).
   */
  onRemoved(listener: (keys: readonly string[], reason: SessionEndReason) => void): void
  ping(): Promise<void>
  close(): Promise<void>
}
