import { after, before } from 'node:test'
import { createKeyNames } from '../../src/session/keys.ts'
import { createKeyring } from '../../src/session/keyring.ts'
import { createMemoryBackend } from '../../src/session/memory-backend.ts'
import { createRedisBackend } from '../../src/session/redis-backend.ts'
import { createSessionStore } from '../../src/session/store.ts'
import { runSessionStoreContract, SECRET_A } from '../contracts/session-store.contract.ts'
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
