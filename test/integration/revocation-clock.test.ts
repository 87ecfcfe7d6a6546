import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { SESSION_REVOKED, startDevTransmitter, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

// Time comes from one clock (buildApp's `now`), for the revocation channels as for the rest:
// a gateway whose clock reads two hours ahead judges tokens signed now by that clock.
const PUSH_AUTHORIZATION = `Bearer ${randomBytes(32).toString('base64url')}`
const AHEAD_MS = 2 * 3600_000
let transmitter: DevTransmitter
let stack: Stack
before(async () => {
  transmitter = await startDevTransmitter({ audience: 'https://bffgate.test/ssf-stream' })
  stack = await startStack({
    now: () => Date.now() + AHEAD_MS,
    env: {
      BFF_SSF_DELIVERY: 'push',
      BFF_SSF_ISSUER: transmitter.issuer,
      BFF_SSF_AUDIENCE: 'https://bffgate.test/ssf-stream',
      BFF_SSF_PUSH_AUTHORIZATION: PUSH_AUTHORIZATION,
      BFF_SSF_MAX_AGE_SECONDS: '3600',
      BFF_GLOBAL_REVOCATION_ISSUER: transmitter.issuer,
    },
  })
  transmitter.userIssuer = stack.idp.issuer
})
after(async () => {
  await stack?.close()
  await transmitter?.close()
})

test('a SET signed at real time is refused as too old by a gateway whose clock is two hours ahead', async () => {
  const set = await transmitter.sessionRevoked('user-nobody')
  const res = await transmitter.push(`${stack.url}/bff/ssf/events`, set.token, { authorization: PUSH_AUTHORIZATION })
  assert.equal(res.status, 400)
  assert.deepEqual(res.body, { err: 'invalid_request', description: 'iat is too old' })
  // Signed at the gateway's time, the same event is accepted.
  const current = await transmitter.sign(
    SESSION_REVOKED,
    {},
    { format: 'opaque', id: 'user-nobody' },
    { iat: Math.floor((Date.now() + AHEAD_MS) / 1000) },
  )
  assert.equal(
    (await transmitter.push(`${stack.url}/bff/ssf/events`, current.token, { authorization: PUSH_AUTHORIZATION }))
      .status,
    202,
  )
})

test("a caller token valid at real time has expired by the gateway's clock; one issued at its time is accepted", async () => {
  const url = `${stack.url}/bff/global-token-revocation`
  const subject = { format: 'opaque', id: 'user-nobody' }
  assert.equal(
    (await transmitter.revokeGlobally(url, subject, { token: await transmitter.callerToken(url) })).status,
    401,
  )
  const iat = Math.floor((Date.now() + AHEAD_MS) / 1000)
  assert.equal(
    (
      await transmitter.revokeGlobally(url, subject, {
        token: await transmitter.callerToken(url, { iat, exp: iat + 300 }),
      })
    ).status,
    204,
  )
})
