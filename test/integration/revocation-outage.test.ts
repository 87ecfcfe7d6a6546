import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Redis } from 'ioredis'
import type { DevTransmitter } from '../../dev/ssf/transmitter.ts'
import { startRevocationStack, type RevocationStack } from '../helpers/revocation.ts'
import type { Browser } from '../helpers/browser.ts'
import { type Stack, sessionCookieHeader } from '../helpers/stack.ts'

// A session-store outage is not the event's fault: a retryable 503, nothing claimed, nothing lost.
let revocation: RevocationStack
let admin: Redis
let transmitter: DevTransmitter
let stack: Stack
let PUSH_AUTHORIZATION: string
before(async () => {
  revocation = await startRevocationStack('revocation-outage')
  ;({ admin, transmitter, stack, pushAuthorization: PUSH_AUTHORIZATION } = revocation)
})
after(async () => {
  await revocation?.close()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)
const userStatus = async (cookie: string) => (await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).status

/** Runs `during` while Redis is frozen (SIGSTOP: an outage that keeps the data). */
async function whileFrozen<T>(t: { after: (fn: () => void) => void }, during: () => Promise<T>): Promise<T> {
  process.kill(revocation.redis.pid, 'SIGSTOP')
  let thawed = false
  const thaw = () => {
    if (!thawed) {
      thawed = true
      process.kill(revocation.redis.pid, 'SIGCONT')
    }
  }
  t.after(thaw)
  try {
    return await during()
  } finally {
    thaw()
    await admin.ping()
  }
}

test("a pushed SET during a store outage gets 503 with Retry-After, and the transmitter's retry ends the sessions", async (t) => {
  const cookie = cookieOf((await stack.login()).browser)
  const set = await transmitter.sessionRevoked('user-alice')
  const during = await whileFrozen(t, async () => {
    const res = await fetch(`${stack.url}/bff/ssf/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt', authorization: PUSH_AUTHORIZATION },
      body: set.token,
    })
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      body: (await res.json()) as { err: string },
    }
  })
  assert.equal(during.status, 503)
  assert.ok(Number(during.retryAfter) > 0)
  assert.equal(during.body.err, 'session_store_unavailable')
  assert.equal(await userStatus(cookie), 200, 'the outage lost the session, or ended it half-way')
  const retry = await transmitter.push(`${stack.url}/bff/ssf/events`, set.token, { authorization: PUSH_AUTHORIZATION })
  assert.equal(retry.status, 202, `the retry was refused: ${JSON.stringify(retry.body)}`)
  assert.equal(await userStatus(cookie), 401)
})

test('a global token revocation during a store outage gets 503, and a retry with the same token ends the sessions', async (t) => {
  const cookie = cookieOf((await stack.login()).browser)
  const url = `${stack.url}/bff/global-token-revocation`
  const subject = { format: 'iss_sub', iss: stack.idp.issuer, sub: 'user-alice' }
  // One caller token for the request and its retry: a failed attempt must not use it up.
  const token = await transmitter.callerToken(url)
  const during = await whileFrozen(t, () => transmitter.revokeGlobally(url, subject, { token }))
  assert.equal(during.status, 503)
  assert.equal(await userStatus(cookie), 200)
  assert.equal((await transmitter.revokeGlobally(url, subject, { token })).status, 204)
  assert.equal(await userStatus(cookie), 401)
})
