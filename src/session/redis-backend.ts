import type { Redis } from 'ioredis'
import { BffError } from '../errors.ts'
import type { SessionBackend } from './backend.ts'

const RECORD_FIELD = 'r'
const INDEXES_FIELD = 'x'

/**
 * {@link SessionBackend} on Redis (the only ioredis user besides the connection factory).
 * A session is a hash: the sealed record, and the index keys it was written with, so a
 * session found through one index can be removed from all of them without decrypting it.
 */
export function createRedisBackend (redis: Redis): SessionBackend {
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
      const results = await exec(multi)
      return results.at(-1) as number
    }),

    members: (indexKey) => wrap('members', () => redis.smembers(indexKey)),

    setIfAbsent: (key, ttlMs) => wrap('setIfAbsent', async () => (await redis.set(key, '1', 'PX', ttlMs, 'NX')) === 'OK'),

    ping: () => wrap('ping', async () => { await redis.ping() }),

    close: async () => {
      try {
        await redis.quit()
      } catch {
        redis.disconnect()
      }
    },
  }
}
