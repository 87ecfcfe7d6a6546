import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createKeyNames } from '../../src/session/keys.ts'
import { createKeyring } from '../../src/session/keyring.ts'
import { createMemoryBackend } from '../../src/session/memory-backend.ts'
import { createRedisBackend } from '../../src/session/redis-backend.ts'
import { createSessionStore } from '../../src/session/store.ts'
import { runSessionStoreContract, sampleRecord, SECRET_A } from '../contracts/session-store.contract.ts'
import { dumpRedis, startTestRedis, type TestRedis } from '../helpers/redis.ts'

let redis: TestRedis
before(async () => { redis = await startTestRedis() })
after(() => redis.stop())

runSessionStoreContract('redis', async ({ idleSeconds, secrets = [SECRET_A], prefix }) => {
  const client = redis.client()
  const keyPrefix = prefix ?? redis.prefix()
  const store = createSessionStore({ backend: createRedisBackend(client, { removedChannel: `${keyPrefix}removed` }), keyring: createKeyring(secrets), keys: createKeyNames(keyPrefix), idleSeconds })
  return {
    store,
    dump: async () => (await dumpRedis(client, keyPrefix)).values,
  }
})

// One memory backend for the whole file: stores made with the same prefix share sessions.
const memory = createMemoryBackend()
after(() => memory.close())
runSessionStoreContract('memory', async ({ idleSeconds, secrets = [SECRET_A], prefix }) => {
  const store = createSessionStore({ backend: { ...memory, close: async () => {} }, keyring: createKeyring(secrets), keys: createKeyNames(prefix ?? `m${Math.random()}:`), idleSeconds })
  return { store }
})

describe('redis session layout', () => {
  test('a read is one HMGET; a record written before the deadline field still loads, with its lifetime from PTTL', async (t) => {
    const client = redis.client()
    const keyPrefix = redis.prefix()
    const store = createSessionStore({ backend: createRedisBackend(client), keyring: createKeyring([SECRET_A]), keys: createKeyNames(keyPrefix), idleSeconds: 60 })
    t.after(() => store.close())
    const { cookieValue } = await store.create(sampleRecord())
    const [key] = await client.keys(`${keyPrefix}s:*`)
    assert.ok(key !== undefined)
    assert.deepEqual((await client.hkeys(key)).sort(), ['d', 'r', 'x'])
    const deadline = Number(await client.hget(key, 'd'))
    assert.ok(Math.abs(deadline - (Date.now() + (await client.pttl(key)))) < 1000, 'the deadline field matches the key\'s lifetime')

    await client.hdel(key, 'd')
    await client.pexpire(key, 30_000)
    const loaded = await store.load(cookieValue, { slide: false })
    assert.equal(loaded?.record.sub, 'user-1')
    assert.ok(loaded.expiresIn > 25 && loaded.expiresIn <= 30, `expiresIn ${loaded.expiresIn}`)
    // Sliding writes the field again.
    assert.ok((await store.load(cookieValue, { slide: true }))!.expiresIn > 55)
    assert.ok(Number(await client.hget(key, 'd')) > Date.now() + 55_000)
    // A slide that comes after the record ended (elsewhere) never recreates it.
    await client.del(key)
    await createRedisBackend(client).expire(key, [], 60_000)
    assert.equal(await client.exists(key), 0)
  })
})
