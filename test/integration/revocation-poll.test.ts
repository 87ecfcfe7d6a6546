import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DEFAULT_USER } from '../../dev/idp/index.ts'
import { startDevTransmitter, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import type { Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { BOB, startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }
const ALICE = DEFAULT_USER.sub
const STREAM_AUDIENCE = 'https://bffgate.test/ssf-stream'

let redis: TestRedis
let transmitter: DevTransmitter
let stack: Stack
let replicas: Replica[]
let urls: string[]

before(async () => {
  redis = await startTestRedis()
  transmitter = await startDevTransmitter({ audience: STREAM_AUDIENCE })
  stack = await startStack({
    redis,
    idp: { users: [{ ...DEFAULT_USER }, BOB] },
    env: {
      BFF_SSF_DELIVERY: 'poll',
      BFF_SSF_ISSUER: transmitter.issuer,
      BFF_SSF_AUDIENCE: STREAM_AUDIENCE,
      BFF_SSF_POLL_URL: transmitter.pollUrl,
      BFF_SSF_POLL_AUTHORIZATION: transmitter.pollAuthorization,
    },
  })
  transmitter.userIssuer = stack.idp.issuer
  replicas = await Promise.all([
    startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' }),
    startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' }),
  ])
  urls = [stack.url, ...replicas.map((r) => r.url)]
})
after(async () => {
  await Promise.all((replicas ?? []).map((r) => r.stop()))
  await stack?.close()
  await transmitter?.close()
  await redis?.stop()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)
const statusesOn = async (cookie: string) =>
  Promise.all(urls.map(async (url) => (await fetch(`${url}/api/x`, { headers: { ...CSRF, cookie } })).status))

async function login(user?: { username: string; password: string }): Promise<string> {
  const cookie = cookieOf((await stack.login(user === undefined ? {} : { user })).browser)
  assert.deepEqual(await statusesOn(cookie), [200, 200, 200])
  return cookie
}

/** Polls `check` until it holds or `ms` pass; the time it took. */
async function waitFor(check: () => Promise<boolean> | boolean, ms: number): Promise<number> {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms`)
    await sleep(20)
  }
  return performance.now() - started
}

describe('Shared Signals poll delivery (RFC 8936)', () => {
  test("a queued session-revoked ends the user's sessions on all three replicas within a second, and is acknowledged", async () => {
    const one = await login()
    const two = await login()
    const bob = await login(BOB)
    // Every replica has started polling or waiting for the lease by now.
    await waitFor(() => transmitter.polls().total > 0, 10_000)
    const set = await transmitter.sessionRevoked(ALICE)
    transmitter.enqueue(set)
    const elapsed = await waitFor(async () => (await statusesOn(one)).every((s) => s === 401), 5000)
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`)
    assert.deepEqual(await statusesOn(two), [401, 401, 401])
    assert.deepEqual(await statusesOn(bob), [200, 200, 200])
    await waitFor(() => transmitter.pending().length === 0, 5000)
    assert.equal(transmitter.reportedErrors()[set.jti], undefined)
  })

  test('credential-change arrives by poll too', async () => {
    const alice = await login()
    transmitter.enqueue(await transmitter.credentialChange(ALICE))
    const elapsed = await waitFor(async () => (await statusesOn(alice)).every((s) => s === 401), 5000)
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`)
  })

  test('a bad SET is reported in setErrs with its RFC 8935 error and ends nothing; the good one beside it is carried out', async () => {
    const alice = await login()
    const bob = await login(BOB)
    const wrongAudience = await transmitter.sign(
      'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
      {},
      { format: 'iss_sub', iss: stack.idp.issuer, sub: BOB.sub },
      { aud: 'https://another-receiver.example' },
    )
    const strangerKey = await transmitter.sign(
      'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
      {},
      { format: 'iss_sub', iss: stack.idp.issuer, sub: BOB.sub },
      {},
      { key: await transmitter.strangerKey() },
    )
    const good = await transmitter.sessionRevoked(ALICE)
    transmitter.enqueue(wrongAudience)
    transmitter.enqueue(strangerKey)
    transmitter.enqueue(good)
    await waitFor(async () => (await statusesOn(alice)).every((s) => s === 401), 5000)
    await waitFor(() => transmitter.pending().length === 0, 5000)
    const errors = transmitter.reportedErrors()
    assert.equal(errors[wrongAudience.jti]?.err, 'invalid_audience')
    assert.equal(errors[strangerKey.jti]?.err, 'invalid_key')
    assert.equal(errors[good.jti], undefined)
    assert.deepEqual(await statusesOn(bob), [200, 200, 200])
  })

  test('exactly one replica polls at a time', () => {
    const { total, maxConcurrent } = transmitter.polls()
    assert.ok(total >= 3, `${total} polls`)
    assert.equal(maxConcurrent, 1)
  })

  test('a redelivered SET (acknowledgement lost) is acknowledged again without ending newer sessions', async () => {
    const set = await transmitter.sessionRevoked(ALICE)
    transmitter.enqueue(set)
    await waitFor(() => transmitter.pending().length === 0, 5000)
    const alice = await login()
    transmitter.enqueue(set)
    await waitFor(() => transmitter.pending().length === 0, 5000)
    assert.equal(transmitter.reportedErrors()[set.jti], undefined)
    assert.deepEqual(await statusesOn(alice), [200, 200, 200], 'the redelivery ended a session created after the event')
  })
})
