import type { Redis } from 'ioredis'
import { BffError } from '../errors.ts'
import type { SessionBackend } from './backend.ts'

const RECORD_FIELD = 'r'
const INDEXES_FIELD = 'x'

/** KEYS: lock, record. ARGV: token, sealed record, ttl ms. Writes only while the lock is ours. */
const WRITE_FENCED = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], '${RECORD_FIELD}', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`
/** KEYS: lock. ARGV: token. */
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/**
 * {@link SessionBackend} on Redis (the only ioredis user besides the connection factory).
 * A session is a hash: the sealed record, and the index keys it was written with, so a
 * session found through one index can be removed from all of them without decrypting it.
 */
export function createRedisBackend (redis: Redis, options: { removedChannel?: string } = {}): SessionBackend {
  const channel = options.removedChannel ?? 'bff:removed'
  let subscriber: Redis | undefined
  if (typeof (redis as Partial<ScriptedRedis>).bffWriteFenced !== 'function') {
    redis.defineCommand('bffWriteFenced', { numberOfKeys: 2, lua: WRITE_FENCED })
    redis.defineCommand('bffReleaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK })
  }
  const scripted = redis as unknown as ScriptedRedis
  const wrap = async <T>(operation: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (err) {
      throw new BffError('BFF_ERR_STORE_UNAVAILABLE', { cause: new Error(`redis ${operation} failed`, { cause: err }), retryAfter: 2 })
    }
  }
  const exec = async (multi: ReturnType<Redis['multi']>): Promise<unknown[]> => {
    const results = await multi.exec()
    if (results === null) throw new Error('transaction aborted')
    for (const [err] of results) if (err) throw err
    return results.map(([, value]) => value)
  }

  return {
    read: (key) => wrap('read', async () => {
      const results = await redis.pipeline().hgetBuffer(key, RECORD_FIELD).pttl(key).exec()
      if (results === null) return undefined
      for (const [err] of results) if (err) throw err
      const sealed = results[0]![1] as Buffer | null
      const ttlMs = results[1]![1] as number
      return sealed === null || ttlMs <= 0 ? undefined : { sealed, ttlMs }
    }),

    write: (key, sealed, indexKeys, ttlMs) => wrap('write', async () => {
      const multi = redis.multi()
      for (const index of indexKeys) {
        multi.sadd(index, key).pexpire(index, ttlMs, 'NX').pexpire(index, ttlMs, 'GT')
      }
      multi.hset(key, RECORD_FIELD, sealed, INDEXES_FIELD, indexKeys.join(' ')).pexpire(key, ttlMs)
      await exec(multi)
    }),

    writeFenced: (key, sealed, indexKeys, ttlMs, fence) => wrap('writeFenced', async () => {
      const written = await scripted.bffWriteFenced(fence.lockKey, key, fence.token, sealed, ttlMs)
      if (written !== 1) return false
      if (indexKeys.length > 0) {
        const pipeline = redis.pipeline()
        for (const index of indexKeys) pipeline.pexpire(index, ttlMs, 'GT')
        await pipeline.exec()
      }
      return true
    }),

    acquireLock: (lockKey, token, ttlMs) => wrap('acquireLock', async () => (await redis.set(lockKey, token, 'PX', ttlMs, 'NX')) === 'OK'),

    releaseLock: (lockKey, token) => wrap('releaseLock', async () => { await scripted.bffReleaseLock(lockKey, token) }),

    expire: (key, indexKeys, ttlMs) => wrap('expire', async () => {
      const multi = redis.multi()
      for (const index of indexKeys) multi.pexpire(index, ttlMs, 'GT')
      multi.pexpire(key, ttlMs)
      await exec(multi)
    }),

    remove: (keys) => wrap('remove', async () => {
      if (keys.length === 0) return 0
      const lookup = redis.pipeline()
      for (const key of keys) lookup.hget(key, INDEXES_FIELD)
      const found = (await lookup.exec()) ?? []
      const multi = redis.multi()
      keys.forEach((key, i) => {
        const indexes = (found[i]?.[1] as string | null) ?? ''
        for (const index of indexes.split(' ')) if (index !== '') multi.srem(index, key)
      })
      multi.del(...keys)
      multi.publish(channel, keys.join(' '))
      const results = await exec(multi)
      return results.at(-2) as number
    }),

    members: (indexKey) => wrap('members', () => redis.smembers(indexKey)),

    setIfAbsent: (key, ttlMs) => wrap('setIfAbsent', async () => (await redis.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK'),

    onRemoved (listener) {
      if (subscriber === undefined) {
        // A connection of its own: a subscribed connection can run no other command.
        subscriber = redis.duplicate()
        subscriber.on('error', () => {}) // reconnects by itself; the main connection reports outages
        subscriber.subscribe(channel).catch(() => {})
      }
      subscriber.on('message', (from: string, message: string) => {
        if (from === channel) listener(message.split(' '))
      })
    },

    ping: () => wrap('ping', async () => { await redis.ping() }),

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

interface ScriptedRedis {
  bffWriteFenced (lockKey: string, key: string, token: string, sealed: Buffer, ttlMs: number): Promise<number>
  bffReleaseLock (lockKey: string, token: string): Promise<number>
}
