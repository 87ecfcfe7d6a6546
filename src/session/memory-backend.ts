import type { SessionBackend } from './backend.ts'
import type { SessionEndReason } from './end-reason.ts'

interface Entry<T> {
  value: T
  expiresAt: number
}

interface StoredValue {
  readonly sealed: Buffer
  readonly indexKeys: readonly string[]
  readonly fingerprint?: Buffer
}

/**
 * {@link SessionBackend} in process memory, for a single development process
 * (`BFF_SESSION_STORE=memory`). Same semantics as Redis: lifetimes, index sets, one-time keys.
 * Expired entries are dropped when touched and by a periodic sweep.
 */
export function createMemoryBackend(options: { now?: () => number } = {}): SessionBackend {
  const now = options.now ?? Date.now
  const records = new Map<string, Entry<StoredValue>>()
  const indexes = new Map<string, Entry<Set<string>>>()
  // One keyspace for locks and one-time markers, as in Redis: a lock's key taken by
  // `acquireLock` is a marker `setIfAbsent` finds taken, and the other way round.
  const locksAndMarkers = new Map<string, Entry<string>>()
  const removedListeners: Array<(keys: readonly string[], reason: SessionEndReason) => void> = []

  const live = <T>(map: Map<string, Entry<T>>, key: string): Entry<T> | undefined => {
    const entry = map.get(key)
    if (entry !== undefined && entry.expiresAt <= now()) {
      map.delete(key)
      return undefined
    }
    return entry
  }
  const raiseIndex = (index: string, expiresAt: number) => {
    const entry = live(indexes, index)
    if (entry !== undefined && entry.expiresAt < expiresAt) entry.expiresAt = expiresAt
  }
  const sweep = setInterval(() => {
    for (const map of [records, indexes, locksAndMarkers] as Map<string, Entry<unknown>>[]) {
      for (const key of map.keys()) live(map, key)
    }
  }, 30_000)
  sweep.unref()

  return {
    async read(key) {
      const entry = live(records, key)
      return entry === undefined ? undefined : { sealed: entry.value.sealed, ttlMs: entry.expiresAt - now() }
    },
    async write(key, sealed, indexKeys, ttlMs, fingerprint) {
      const expiresAt = now() + ttlMs
      for (const index of indexKeys) {
        const entry = live(indexes, index) ?? { value: new Set<string>(), expiresAt }
        entry.value.add(key)
        indexes.set(index, entry)
        raiseIndex(index, expiresAt)
      }
      records.set(key, { value: storedValue(sealed, indexKeys, fingerprint), expiresAt })
    },
    async writeFenced(key, sealed, indexKeys, ttlMs, fence, fingerprint) {
      if (live(locksAndMarkers, fence.lockKey)?.value !== fence.token || live(records, key) === undefined) return false
      const expiresAt = now() + ttlMs
      records.set(key, { value: storedValue(sealed, indexKeys, fingerprint), expiresAt })
      for (const index of indexKeys) raiseIndex(index, expiresAt)
      return true
    },
    async writeIfFingerprint(key, sealed, indexKeys, ttlMs, expected, fingerprint) {
      const current = live(records, key)?.value.fingerprint
      if (current === undefined || !current.equals(expected)) return false
      const expiresAt = now() + ttlMs
      records.set(key, { value: storedValue(sealed, indexKeys, fingerprint), expiresAt })
      for (const index of indexKeys) raiseIndex(index, expiresAt)
      return true
    },
    async renewLock(lockKey, token, ttlMs) {
      const lock = live(locksAndMarkers, lockKey)
      if (lock?.value !== token) return false
      lock.expiresAt = now() + ttlMs
      return true
    },
    async acquireLock(lockKey, token, ttlMs) {
      if (live(locksAndMarkers, lockKey) !== undefined) return false
      locksAndMarkers.set(lockKey, { value: token, expiresAt: now() + ttlMs })
      return true
    },
    async releaseLock(lockKey, token) {
      if (live(locksAndMarkers, lockKey)?.value === token) locksAndMarkers.delete(lockKey)
    },
    async expire(key, indexKeys, ttlMs) {
      const entry = live(records, key)
      if (entry === undefined) return
      entry.expiresAt = now() + ttlMs
      for (const index of indexKeys) raiseIndex(index, entry.expiresAt)
    },
    async remove(keys, reason) {
      let removed = 0
      for (const key of keys) {
        const entry = records.get(key)
        if (entry === undefined) continue
        for (const index of entry.value.indexKeys) indexes.get(index)?.value.delete(key)
        records.delete(key)
        if (entry.expiresAt > now()) removed++
      }
      if (keys.length > 0) for (const listener of removedListeners) listener(keys, reason ?? 'ended')
      return removed
    },
    async members(indexKey) {
      return [...(live(indexes, indexKey)?.value ?? [])]
    },
    async setIfAbsent(key, ttlMs) {
      if (live(locksAndMarkers, key) !== undefined) return false
      locksAndMarkers.set(key, { value: '1', expiresAt: now() + ttlMs })
      return true
    },
    onRemoved(listener) {
      removedListeners.push(listener)
    },
    async ping() {},
    async close() {
      clearInterval(sweep)
      records.clear()
      indexes.clear()
      locksAndMarkers.clear()
    },
  }
}

/** A copy outside Buffer's shared pool: a kept slice would keep its whole 8 KiB slab alive. */
function ownBytes(bytes: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(bytes.length)
  bytes.copy(copy)
  return copy
}

/** What a write stores: copies, so nothing the caller holds (or a pool slab) is kept. */
function storedValue(sealed: Buffer, indexKeys: readonly string[], fingerprint: Buffer | undefined): StoredValue {
  return {
    sealed: ownBytes(sealed),
    indexKeys: [...indexKeys],
    ...(fingerprint !== undefined && { fingerprint: ownBytes(fingerprint) }),
  }
}
