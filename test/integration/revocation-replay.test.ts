import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import type { DevTransmitter } from '../../dev/ssf/transmitter.ts'
import { startRevocationStack, type RevocationStack } from '../helpers/revocation.ts'
import { createKeyNames } from '../../src/session/keys.ts'
import type { Stack } from '../helpers/stack.ts'

// One caller token, one revocation; one SET, one processing: the id is claimed (SET NX) before
// anything ends, and the claim is dropped again when ending then fails, so the retry works.
let revocation: RevocationStack
let admin: Redis
let transmitter: DevTransmitter
let stack: Stack
let PUSH_AUTHORIZATION: string
before(async () => {
  revocation = await startRevocationStack('revocation-replay')
  ;({ admin, transmitter, stack, pushAuthorization: PUSH_AUTHORIZATION } = revocation)
})
after(async () => {
  await revocation?.close()
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
