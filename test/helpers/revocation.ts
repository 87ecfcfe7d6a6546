import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { startDevTransmitter, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import { startRedisServer, type RedisServerProcess } from './redis.ts'
import { startStack, type Stack } from './stack.ts'

/** A gateway with both revocation channels on (push delivery), over a Redis of its own. */
export interface RevocationStack {
  readonly redis: RedisServerProcess
  /** A plain client of that Redis, to break or inspect what the gateway stores. */
  readonly admin: Redis
  readonly transmitter: DevTransmitter
  readonly stack: Stack
  /** The `Authorization` value the push endpoint expects. */
  readonly pushAuthorization: string
  close(): Promise<void>
}

export const SSF_STREAM_AUDIENCE = 'https://bffgate.test/ssf-stream'

export async function startRevocationStack(name: string): Promise<RevocationStack> {
  const pushAuthorization = `Bearer ${randomBytes(32).toString('base64url')}`
  const redis = await startRedisServer()
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  const transmitter = await startDevTransmitter({ audience: SSF_STREAM_AUDIENCE })
  const stack = await startStack({
    env: {
      BFF_SESSION_STORE: 'redis',
      BFF_REDIS_URL: redis.url,
      BFF_REDIS_KEY_PREFIX: `${name}:${process.pid}:`,
      BFF_SSF_DELIVERY: 'push',
      BFF_SSF_ISSUER: transmitter.issuer,
      BFF_SSF_AUDIENCE: SSF_STREAM_AUDIENCE,
      BFF_SSF_PUSH_AUTHORIZATION: pushAuthorization,
      BFF_GLOBAL_REVOCATION_ISSUER: transmitter.issuer,
    },
  })
  transmitter.userIssuer = stack.idp.issuer
  return {
    redis,
    admin,
    transmitter,
    stack,
    pushAuthorization,
    async close() {
      await stack.close()
      await transmitter.close()
      admin.disconnect()
      await redis.stop()
    },
  }
}
