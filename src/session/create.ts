import type { Config } from '../config/types.ts'
import type { StoreOperationObserver } from '../events.ts'
import { createKeyNames } from './keys.ts'
import type { Keyring } from './keyring.ts'
import { createMemoryBackend } from './memory-backend.ts'
import { createRedisBackend } from './redis-backend.ts'
import { createRedisConnection, watchRedisConnection, type ConnectionLog } from './redis-connection.ts'
import { createSessionStore } from './store.ts'
import type { SessionStore } from './types.ts'

/**
 * The store the configuration asks for: memory, or Redis in the configured topology
 * (standalone, Sentinel or Cluster; see `redis-connection.ts`). `observe` sees the duration
 * and outcome of every Redis operation; `log` hears when Redis goes away and comes back.
 */
export function createConfiguredStore(
  config: Config,
  keyring: Keyring,
  options: { observe?: StoreOperationObserver; log?: ConnectionLog; now?: () => number } = {},
): SessionStore {
  const keys = createKeyNames(config.redis.keyPrefix)
  let backend
  if (config.session.store === 'memory') {
    backend = createMemoryBackend(options.now !== undefined ? { now: options.now } : {})
  } else {
    const connection = createRedisConnection(config.redis)
    if (options.log !== undefined) watchRedisConnection(connection, options.log)
    backend = createRedisBackend(connection, {
      removedChannel: keys.removedChannel,
      ...(options.observe !== undefined && { observe: options.observe }),
      ...(options.now !== undefined && { now: options.now }),
    })
  }
  return createSessionStore({
    backend,
    keyring,
    keys,
    idleSeconds: config.session.idleSeconds,
    primaryFrontend: config.frontends[0]?.name ?? 'default',
    ...(options.now !== undefined && { now: options.now }),
  })
}
