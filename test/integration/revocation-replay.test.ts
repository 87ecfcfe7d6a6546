import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { Redis } from 'ioredis'
import { startDevTransmitter, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import { createKeyNames } from '../../src/session/keys.ts'
import { startRedisServer, type RedisServerProcess } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

// One caller token, one revocation; one SET, one processing: the id is claimed (SET NX) before
// anything ends, and the claim is dropped again when ending then fails, so the retry works.
const PUSH_AUTHORIZATION = `Bearer ${randomBytes(32).toString('base64url')}`
let redis: RedisServerProcess
let admin: Redis
let transmitter: DevTransmitter
let stack: Stack
before(async () => {
  redis = await startRedisServer()
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  transmitter = await startDevTransmitter({ audience: 'https://bffgate.test/ssf-stream' })
  stack = await startStack({
    env: {
      BFF_SESSION_STORE: 'redis',
      BFF_REDIS_URL: redis.url,
      BFF_REDIS_KEY_PREFIX: `revocation-replay:${process.pid}:`,
      BFF_SSF_DELIVERY: 'push',
      BFF_SSF_ISSUER: transmitter.issuer,
      BFF_SSF_AUDIENCE: 'https://bffgate.test/ssf-stream',
      BFF_SSF_PUSH_AUTHORIZATION: PUSH_AUTHORIZATION,
      BFF_GLOBAL_REVOCATION_ISSUER: transmitter.issuer,
    },
  })
  transmitter.userIssuer = stack.idp.issuer
})
after(async () => {
  await stack?.close()
  await transmitter?.close()
  admin?.disconnect()
  await redis?.stop()
})

const subIndex = (sub: string) => createKeyNames(stack.keyPrefix).subIndex(stack.idp.issuer, sub)
const revocationUrl = () => `${stack.url}/bff/global-token-revocation`
const push = (token: string) =>
  transmitter.push(`${stack.url}/bff/ssf/events`, token, { authorization: PUSH_AUTHORIZATION })

/**
 * Gives `sub` an index of 10,000 entries whose sessions are gone: ending that user then takes
 * many store round trips, a window in which every concurrent request carrying the same id
 * has been checked. (Only a check made atomically with the claim sees the others.)
 */
async function slowToEnd(sub: string): Promise<void> {
  const fields: Record<string, string> = {}
  for (let i = 0; i < 10_000; i++) fields[`${stack.keyPrefix}session:gone-${i}`] = ''
  await admin.hset(subIndex(sub), fields)
}

test('one caller token carries out one revocation, however many requests carry it at once', async () => {
  await slowToEnd('user-crowd')
  const token = await transmitter.callerToken(revocationUrl())
  const results = await Promise.all(
    Array.from({ length: 8 }, () =>
      transmitter.revokeGlobally(
        revocationUrl(),
        { format: 'iss_sub', iss: stack.idp.issuer, sub: 'user-crowd' },
        { token },
      ),
    ),
  )
  assert.deepEqual(results.map((r) => r.status).sort(), [204, 401, 401, 401, 401, 401, 401, 401])
})

test('one SET pushed many times at once is carried out once; the other deliveries are replays', async () => {
  await slowToEnd('user-crowd')
  const set = await transmitter.sessionRevoked('user-crowd')
  const results = await Promise.all(Array.from({ length: 8 }, () => push(set.token)))
  assert.deepEqual(results.map((r) => r.status).sort(), [202, 400, 400, 400, 400, 400, 400, 400])
  for (const replay of results.filter((r) => r.status === 400))
    assert.deepEqual(replay.body, { err: 'invalid_request', description: 'jti already processed' })
})

/** Makes ending `sub` fail in the store (its index is a string: WRONGTYPE) until the returned repair. */
async function breakIndexOf(sub: string): Promise<() => Promise<void>> {
  await admin.set(subIndex(sub), 'not a hash')
  return async () => {
    await admin.del(subIndex(sub))
  }
}

test('a revocation that fails after its token was claimed (store error) gets 503, and the retry with the same token is carried out', async () => {
  const repair = await breakIndexOf('user-broken')
  const subject = { format: 'iss_sub', iss: stack.idp.issuer, sub: 'user-broken' }
  const token = await transmitter.callerToken(revocationUrl())
  assert.equal((await transmitter.revokeGlobally(revocationUrl(), subject, { token })).status, 503)
  await repair()
  assert.equal(
    (await transmitter.revokeGlobally(revocationUrl(), subject, { token })).status,
    204,
    'the failed attempt used the token up',
  )
  assert.equal((await transmitter.revokeGlobally(revocationUrl(), subject, { token })).status, 401, 'then it is used')
})

test('a SET whose processing fails after its jti was claimed gets 503, and the redelivery is carried out', async () => {
  const repair = await breakIndexOf('user-broken-set')
  const set = await transmitter.sessionRevoked('user-broken-set')
  const failed = await push(set.token)
  assert.equal(failed.status, 503, JSON.stringify(failed.body))
  await repair()
  const retry = await push(set.token)
  assert.equal(retry.status, 202, `the failed attempt used the jti up: ${JSON.stringify(retry.body)}`)
  assert.equal((await push(set.token)).status, 400)
})
