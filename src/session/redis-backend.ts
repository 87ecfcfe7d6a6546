import { Cluster, type ChainableCommander } from 'ioredis'
import { BffError } from '../errors.ts'
import type { StoreOperationObserver } from '../events.ts'
import type { SessionBackend } from './backend.ts'
import { decodeRemoval, encodeRemoval } from './end-reason.ts'
import { createReadBatcher, type SessionEntry } from './read-batcher.ts'
import type { RedisConnection } from './redis-connection.ts'
import {
  DEADLINE_BYTES,
  DEADLINE_OFFSET,
  LAYOUT_V1,
  deadlineBytes,
  decodeSessionValue,
  sealedRecordOf,
  encodeSessionValue,
  fingerprintEntry,
} from './value-codec.ts'

/**
 * KEYS: session. ARGV: the expected fingerprint entry (marker and fingerprint), value, ttl ms.
 * Replaces a session only while it still holds the refresh token the new record's replaced
 * (compare-and-set on the fingerprint entry of the value's index list; nothing is opened).
 */
const WRITE_IF_FINGERPRINT = `
local v = redis.call('GET', KEYS[1])
if not v or string.byte(v, 1) ~= ${LAYOUT_V1} then return 0 end
local count = string.byte(v, ${DEADLINE_OFFSET + DEADLINE_BYTES + 1})
local offset = ${DEADLINE_OFFSET + DEADLINE_BYTES + 2}
local found = false
for i = 1, count do
  local len = string.byte(v, offset)
  if len == nil then return 0 end
  if string.sub(v, offset + 1, offset + len) == ARGV[1] then found = true end
  offset = offset + 1 + len
end
if not found then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`
/** KEYS: lock, session. ARGV: token, value, ttl ms. Replaces a session only while the lock is ours. */
const WRITE_FENCED = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1`
/** KEYS: lock. ARGV: token, ttl ms. Extends a lock's lease only while it is still ours. */
const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`
/** KEYS: session. ARGV: ttl ms, deadline bytes. A new lifetime for a session that still exists (never recreates it). */
const SLIDE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SETRANGE', KEYS[1], ${DEADLINE_OFFSET}, ARGV[2])
return redis.call('PEXPIRE', KEYS[1], ARGV[1])`
/** KEYS: lock. ARGV: token. */
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

export interface RedisBackendOptions {
  /** Pub/sub channel announcing removed sessions to every replica (`KeyNames.removedChannel`). */
  readonly removedChannel: string
  /** Told the duration and outcome of every backend operation (metrics). */
  readonly observe?: StoreOperationObserver
  /** The clock, epoch milliseconds (deadlines written into session values); `Date.now` by default. */
  readonly now?: () => number
}

/**
 * {@link SessionBackend} on Redis (the only ioredis user besides the connection factory).
 * A session is one string (see value-codec.ts); an index is a hash whose field
 * names are the session keys (small hashes are packed compactly by Redis, small sets are not
 * before Redis 7.2).
 *
 * On a standalone or Sentinel-managed Redis, a write and its index updates are one MULTI.
 * On a Cluster a MULTI cannot span slots and the index keys live in other slots than the
 * record, so the steps run in order instead: indexes before the record on writes, the
 * record before its index entries on removal. A crash between the steps leaves at most a
 * stale index entry (removal through it finds nothing), never a live session missing from
 * its index. The Lua scripts touch only the session's own slot (shared hash tag).
 */
export function createRedisBackend(redis: RedisConnection, options: RedisBackendOptions): SessionBackend {
  const channel = options.removedChannel
  const cluster = redis instanceof Cluster
  let subscriber: RedisConnection | undefined
  if (typeof (redis as Partial<ScriptedRedis>).bffWriteFenced !== 'function') {
    redis.defineCommand('bffWriteFenced', { numberOfKeys: 2, lua: WRITE_FENCED })
    redis.defineCommand('bffReleaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK })
    redis.defineCommand('bffSlide', { numberOfKeys: 1, lua: SLIDE })
  }
  if (typeof (redis as Partial<ScriptedRedis>).bffRenewLock !== 'function') {
    redis.defineCommand('bffWriteIfFingerprint', { numberOfKeys: 1, lua: WRITE_IF_FINGERPRINT })
    redis.defineCommand('bffRenewLock', { numberOfKeys: 1, lua: RENEW_LOCK })
  }
  const scripted = redis as unknown as ScriptedRedis
  const observe = options.observe
  const now = options.now ?? Date.now
  const wrap = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now()
    try {
      const result = await run()
      observe?.(operation, (performance.now() - started) / 1000, 'ok')
      return result
    } catch (err) {
      observe?.(operation, (performance.now() - started) / 1000, 'error')
      throw storeUnavailable(operation, err)
    }
  }
  const exec = async (multi: ChainableCommander): Promise<unknown[]> => {
    const results = await multi.exec()
    if (results === null) throw new Error('transaction aborted')
    for (const [err] of results) if (err) throw err
    return results.map(([, value]) => value)
  }
  /**
   * Commands on keys of (possibly) different slots: one pipeline on a single node; on a
   * Cluster, concurrent single commands (ioredis routes each to its node).
   */
  const each = async <T>(
    items: readonly T[],
    command: (target: ChainableCommander | RedisConnection, item: T) => unknown,
  ): Promise<unknown[]> => {
    if (items.length === 0) return []
    if (cluster) return Promise.all(items.map(async (item) => command(redis, item)))
    const pipeline = redis.pipeline()
    for (const item of items) command(pipeline, item)
    return exec(pipeline)
  }

  /** The entry a GET found: the sealed record and its remaining lifetime, if any is left. */
  const entryOf = (value: Buffer | null): SessionEntry | undefined => {
    const parts = value === null ? undefined : sealedRecordOf(value)
    if (parts === undefined) return undefined
    const ttlMs = parts.deadlineMs - now()
    return ttlMs > 0 ? { sealed: parts.sealed, ttlMs } : undefined
  }
  const readOne = async (key: string): Promise<SessionEntry | undefined> => entryOf(await redis.getBuffer(key))
  const readBatched = createReadBatcher(redis, {
    entryOf,
    observe: (seconds, outcome) => observe?.('read', seconds, outcome),
    failure: (err) => storeUnavailable('read', err),
  })

  /** The stored value of a session written now to live `ttlMs`. */
  const valueOf = (sealed: Buffer, indexKeys: readonly string[], ttlMs: number, fingerprint: Buffer | undefined) =>
    encodeSessionValue({
      deadlineMs: now() + ttlMs,
      indexKeys,
      sealed,
      ...(fingerprint !== undefined && { fingerprint }),
    })

  return {
    read: (key) => (cluster ? wrap('read', () => readOne(key)) : readBatched(key)),

    write: (key, sealed, indexKeys, ttlMs, fingerprint) =>
      wrap('write', async () => {
        const value = valueOf(sealed, indexKeys, ttlMs, fingerprint)
        if (cluster) {
          // Indexes first: a crash before the record leaves only a stale index entry.
          await each(indexKeys, (target, index) =>
            exec(
              (target as RedisConnection)
                .multi()
                .hset(index, key, '')
                .pexpire(index, ttlMs, 'NX')
                .pexpire(index, ttlMs, 'GT'),
            ),
          )
          await redis.set(key, value, 'PX', ttlMs)
          return
        }
        const multi = redis.multi()
        for (const index of indexKeys) {
          multi.hset(index, key, '').pexpire(index, ttlMs, 'NX').pexpire(index, ttlMs, 'GT')
        }
        multi.set(key, value, 'PX', ttlMs)
        await exec(multi)
      }),

    writeFenced: (key, sealed, indexKeys, ttlMs, fence, fingerprint) =>
      wrap('writeFenced', async () => {
        const value = valueOf(sealed, indexKeys, ttlMs, fingerprint)
        // Indexes first, as everywhere: raising an index's lifetime is harmless if the fence fails.
        if (cluster) {
          await each(indexKeys, (target, index) => target.pexpire(index, ttlMs, 'GT'))
          return (await scripted.bffWriteFenced(fence.lockKey, key, fence.token, value, ttlMs)) === 1
        }
        const pipeline = redis.pipeline()
        for (const index of indexKeys) pipeline.pexpire(index, ttlMs, 'GT')
        const scriptedPipeline = pipeline as unknown as ScriptedRedis
        scriptedPipeline.bffWriteFenced(fence.lockKey, key, fence.token, value, ttlMs)
        return (await exec(pipeline)).at(-1) === 1
      }),

    writeIfFingerprint: (key, sealed, indexKeys, ttlMs, expected, fingerprint) =>
      wrap('writeIfFingerprint', async () => {
        const value = valueOf(sealed, indexKeys, ttlMs, fingerprint)
        if (cluster) {
          await each(indexKeys, (target, index) => target.pexpire(index, ttlMs, 'GT'))
          return (await scripted.bffWriteIfFingerprint(key, fingerprintEntry(expected), value, ttlMs)) === 1
        }
        const pipeline = redis.pipeline()
        for (const index of indexKeys) pipeline.pexpire(index, ttlMs, 'GT')
        const scriptedPipeline = pipeline as unknown as ScriptedRedis
        scriptedPipeline.bffWriteIfFingerprint(key, fingerprintEntry(expected), value, ttlMs)
        return (await exec(pipeline)).at(-1) === 1
      }),

    renewLock: (lockKey, token, ttlMs) =>
      wrap('renewLock', async () => (await scripted.bffRenewLock(lockKey, token, ttlMs)) === 1),

    acquireLock: (lockKey, token, ttlMs) =>
      wrap('acquireLock', async () => (await redis.set(lockKey, token, 'PX', ttlMs, 'NX')) === 'OK'),

    releaseLock: (lockKey, token) =>
      wrap('releaseLock', async () => {
        await scripted.bffReleaseLock(lockKey, token)
      }),

    expire: (key, indexKeys, ttlMs) =>
      wrap('expire', async () => {
        if (cluster) {
          // Indexes first, so they never lapse before the record they lead to.
          await each(indexKeys, (target, index) => target.pexpire(index, ttlMs, 'GT'))
          await scripted.bffSlide(key, ttlMs, deadlineBytes(now() + ttlMs))
          return
        }
        // One round trip, in order: the indexes' lifetimes first, then the record's.
        const pipeline = redis.pipeline()
        for (const index of indexKeys) pipeline.pexpire(index, ttlMs, 'GT')
        const scriptedPipeline = pipeline as unknown as ScriptedRedis
        scriptedPipeline.bffSlide(key, ttlMs, deadlineBytes(now() + ttlMs))
        await exec(pipeline)
      }),

    remove: (keys, reason) =>
      wrap('remove', async () => {
        if (keys.length === 0) return 0
        const found = (await each(keys, (target, key) => target.getBuffer(key))) as Array<Buffer | null>
        const indexEntries = keys.flatMap((key, i) => {
          const value = found[i]
          return (value ? (decodeSessionValue(value)?.indexKeys ?? []) : []).map((index) => ({ index, key }))
        })
        if (cluster) {
          // The records first: a crash before the index cleanup leaves only stale entries.
          const deleted = ((await each(keys, (target, key) => target.del(key))) as number[]).reduce((a, b) => a + b, 0)
          await each(indexEntries, (target, { index, key }) => target.hdel(index, key))
          await redis.publish(channel, encodeRemoval(keys, reason))
          return deleted
        }
        const multi = redis.multi()
        for (const { index, key } of indexEntries) multi.hdel(index, key)
        multi.del(...keys)
        multi.publish(channel, encodeRemoval(keys, reason))
        const results = await exec(multi)
        return results.at(-2) as number
      }),

    members: (indexKey) => wrap('members', () => redis.hkeys(indexKey)),

    setIfAbsent: (key, ttlMs) =>
      wrap('setIfAbsent', async () => (await redis.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK'),

    onRemoved(listener) {
      if (subscriber === undefined) {
        // A connection of its own: a subscribed connection can run no other command. On a
        // Cluster, PUBLISH reaches every node, so the duplicate's one subscription suffices.
        const duplicate = (redis as { duplicate(): RedisConnection }).duplicate()
        duplicate.on('error', () => {}) // reconnects by itself; the main connection reports outages
        duplicate.subscribe(channel).catch(() => {})
        subscriber = duplicate
      }
      subscriber.on('message', (from: string, message: string) => {
        if (from !== channel) return
        const removal = decodeRemoval(message)
        listener(removal.keys, removal.reason)
      })
    },

    ping: () =>
      wrap('ping', async () => {
        await redis.ping()
      }),

    close: async () => {
      subscriber?.disconnect()
      try {
        await redis.quit()
      } catch {
        redis.disconnect()
      }
    },
  }
}

function storeUnavailable(operation: string, err: unknown): BffError {
  return new BffError('BFF_ERR_STORE_UNAVAILABLE', {
    cause: new Error(`redis ${operation} failed`, { cause: err }),
    retryAfter: 2,
  })
}

interface ScriptedRedis {
  bffWriteFenced(lockKey: string, key: string, token: string, value: Buffer, ttlMs: number): Promise<number>
  bffSlide(key: string, ttlMs: number, deadline: Buffer): Promise<number>
  bffReleaseLock(lockKey: string, token: string): Promise<number>
  bffWriteIfFingerprint(key: string, expected: Buffer, value: Buffer, ttlMs: number): Promise<number>
  bffRenewLock(lockKey: string, token: string, ttlMs: number): Promise<number>
}
