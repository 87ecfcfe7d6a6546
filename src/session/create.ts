import { Redis } from 'ioredis'
import type { Config } from '../config/types.ts'
import { createKeyNames } from './keys.ts'
import type { Keyring } from './keyring.ts'
import { createMemoryBackend } from './memory-backend.ts'
import { createRedisBackend } from './redis-backend.ts'
import { createSessionStore } from './store.ts'
import type { SessionStore } from './types.ts'

/**
 * The store the configuration asks for. The Redis client fails fast while Redis is away
 * (one retry per command, no endless offline queue), so a request gets a 503 instead of
 * hanging, and reconnects by itself.
 */
export function createConfiguredStore (config: Config, keyring: Keyring): SessionStore {
  const backend = config.session.store === 'memory'
    ? createMemoryBackend()
    : createRedisBackend(new Redis(config.redis.url, {
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      enableReadyCheck: true,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    }), { removedChannel: `${config.redis.keyPrefix}removed` })
  return createSessionStore({ backend, keyring, keys: createKeyNames(config.redis.keyPrefix), idleSeconds: config.session.idleSeconds })
}
