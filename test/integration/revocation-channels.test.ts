import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { decodeJwt } from 'jose'
import { DEFAULT_USER } from '../../dev/idp/index.ts'
import { SESSION_REVOKED, startDevTransmitter, VERIFICATION, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import type { Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }
const BOB = {
  username: 'bob',
  password: 'bob-password',
  sub: 'user-bob',
  name: 'Bob Example',
  email: 'bob@example.com',
}
const ALICE = DEFAULT_USER.sub
const STREAM_AUDIENCE = 'https://bffgate.test/ssf-stream'
const PUSH_AUTHORIZATION = `Bearer ${randomBytes(32).toString('base64url')}`

let redis: TestRedis
let transmitter: DevTransmitter
let stack: Stack
let replicas: Replica[]
/** The three replicas' URLs: the in-process one and two processes. */
let urls: string[]

before(async () => {
  redis = await startTestRedis()
  transmitter = await startDevTransmitter({ audience: STREAM_AUDIENCE, criticalSubjectMembers: ['tenant'] })
  stack = await startStack({
    redis,
    idp: { users: [{ ...DEFAULT_USER }, BOB] },
    env: {
      BFF_SSF_DELIVERY: 'push',
      BFF_SSF_ISSUER: transmitter.issuer,
      BFF_SSF_AUDIENCE: STREAM_AUDIENCE,
      BFF_SSF_PUSH_AUTHORIZATION: PUSH_AUTHORIZATION,
      BFF_GLOBAL_REVOCATION_ISSUER: transmitter.issuer,
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
const apiStatus = async (base: string, cookie: string) =>
  (await fetch(`${base}/api/x`, { headers: { ...CSRF, cookie } })).status
const statusesOn = async (cookie: string) => Promise.all(urls.map((url) => apiStatus(url, cookie)))
const sessionCount = async () => (await redis.client().keys(`${stack.keyPrefix}session:*`)).length
const pushUrl = () => `${stack.url}/bff/ssf/events`
const revocationUrl = () => `${stack.url}/bff/global-token-revocation`

/** Logs a user in (a new IdP session) and returns the cookie and the IdP session's `sid`. */
async function login(user?: { username: string; password: string }): Promise<{ cookie: string; sid: string }> {
  const { browser } = await stack.login(user === undefined ? {} : { user })
  const sub = user === undefined ? ALICE : BOB.sub
  const idTokens = stack.idp
    .issuedTokens()
    .flatMap((token) => {
      try {
        return [decodeJwt(token)]
      } catch {
        return []
      }
    })
    .filter((claims) => claims.sub === sub && typeof claims.sid === 'string')
  const cookie = cookieOf(browser)
  assert.deepEqual(await statusesOn(cookie), [200, 200, 200])
  return { cookie, sid: idTokens.at(-1)!.sid as string }
}

/** Asserts that every replica answers 401 for `cookie` within a second of `started`. */
async function assertEndedEverywhere(cookie: string, started: number): Promise<void> {
  const statuses = await statusesOn(cookie)
  const elapsed = performance.now() - started
  assert.deepEqual(statuses, [401, 401, 401])
  assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`)
}

describe('Shared Signals push delivery (RFC 8935)', () => {
  test('session-revoked naming an IdP session ends its sessions on all three replicas within a second, and no other', async () => {
    const first = await login()
    const second = await login()
    const bob = await login(BOB)
    assert.notEqual(first.sid, second.sid)
    const set = await transmitter.sessionRevoked(ALICE, first.sid)
    const started = performance.now()
    const res = await transmitter.push(pushUrl(), set.token, { authorization: PUSH_AUTHORIZATION })
    assert.equal(res.status, 202)
    await assertEndedEverywhere(first.cookie, started)
    assert.deepEqual(await statusesOn(second.cookie), [200, 200, 200], 'another IdP session of the same user ended')
    assert.deepEqual(await statusesOn(bob.cookie), [200, 200, 200], 'another user was logged out')
  })

  test('session-revoked naming only the user ends every session of that user', async () => {
    const one = await login()
    const two = await login()
    const bob = await login(BOB)
    const started = performance.now()
    const res = await transmitter.push(pushUrl(), (await transmitter.sessionRevoked(ALICE)).token, {
      authorization: PUSH_AUTHORIZATION,
    })
    assert.equal(res.status, 202)
    await assertEndedEverywhere(one.cookie, started)
    await assertEndedEverywhere(two.cookie, started)
    assert.deepEqual(await statusesOn(bob.cookie), [200, 200, 200])
  })

  test('credential-change ends every session of the user on all replicas', async () => {
    const one = await login()
    const two = await login()
    const bob = await login(BOB)
    const started = performance.now()
    const res = await transmitter.push(pushUrl(), (await transmitter.credentialChange(ALICE)).token, {
      authorization: PUSH_AUTHORIZATION,
    })
    assert.equal(res.status, 202)
    await assertEndedEverywhere(one.cookie, started)
    await assertEndedEverywhere(two.cookie, started)
    assert.deepEqual(await statusesOn(bob.cookie), [200, 200, 200])
  })

  test('verification events, unknown event types and unmappable subjects are accepted and end nothing', async () => {
    const alice = await login()
    const sessionsBefore = await sessionCount()
    const stream = { format: 'opaque', id: 'stream-1' }
    const accepted = [
      await transmitter.sign(VERIFICATION, { state: 'abc' }, stream),
      await transmitter.sign(
        'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change',
        { current_status: 'not-compliant', previous_status: 'compliant' },
        { format: 'iss_sub', iss: stack.idp.issuer, sub: ALICE },
      ),
      await transmitter.sign(SESSION_REVOKED, {}, { format: 'email', email: 'alice@example.com' }),
      await transmitter.sign(
        SESSION_REVOKED,
        {},
        { format: 'iss_sub', iss: 'https://another-idp.example', sub: ALICE },
      ),
    ]
    for (const set of accepted)
      assert.equal((await transmitter.push(pushUrl(), set.token, { authorization: PUSH_AUTHORIZATION })).status, 202)
    assert.deepEqual(await statusesOn(alice.cookie), [200, 200, 200])
    assert.equal(await sessionCount(), sessionsBefore)
    assert.ok(
      stack.logs.lines.some((l) => l.event === 'ssf.event_ignored' && l.level === 20),
      'unknown event type logged at debug',
    )
    assert.ok(stack.logs.lines.some((l) => l.event === 'ssf.subject_ignored'))
  })

  test('an event whose subject has a critical member bffgate cannot process is discarded; a non-critical one is ignored', async () => {
    const alice = await login()
    const user = { format: 'iss_sub', iss: stack.idp.issuer, sub: ALICE }
    const withTenant = await transmitter.sign(
      SESSION_REVOKED,
      {},
      { format: 'complex', user, tenant: { format: 'opaque', id: 'tenant-1' } },
    )
    assert.equal(
      (await transmitter.push(pushUrl(), withTenant.token, { authorization: PUSH_AUTHORIZATION })).status,
      202,
    )
    assert.deepEqual(
      await statusesOn(alice.cookie),
      [200, 200, 200],
      'an event with a critical tenant member was carried out',
    )
    assert.ok(stack.logs.lines.some((l) => l.event === 'ssf.subject_ignored' && String(l.reason).includes('critical')))
    const withDevice = await transmitter.sign(
      SESSION_REVOKED,
      {},
      { format: 'complex', user, device: { format: 'opaque', id: 'device-1' } },
    )
    assert.equal(
      (await transmitter.push(pushUrl(), withDevice.token, { authorization: PUSH_AUTHORIZATION })).status,
      202,
    )
    assert.deepEqual(await statusesOn(alice.cookie), [401, 401, 401])
  })

  test('every bad request gets the status and RFC 8935 error its spec prescribes, and ends nothing', async () => {
    const alice = await login()
    const sessionsBefore = await sessionCount()
    const now = Math.floor(Date.now() / 1000)
    const target = { format: 'iss_sub', iss: stack.idp.issuer, sub: ALICE }
    const sign = (claims: Record<string, unknown>, options = {}) =>
      transmitter.sign(SESSION_REVOKED, {}, target, claims, options).then((s) => s.token)
    const valid = await sign({})
    const [header, , signature] = valid.split('.')
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(valid), sub_id: { ...target, sub: BOB.sub } })).toString('base64url')}.${signature}`
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'secevent+jwt' })).toString('base64url')}.${valid.split('.')[1]}.`
    const auth = PUSH_AUTHORIZATION

    const cases: Array<[string, string, { authorization?: string; contentType?: string }, number, string]> = [
      ['bad signature', tampered, { authorization: auth }, 400, 'invalid_key'],
      ['alg none', unsigned, { authorization: auth }, 400, 'invalid_key'],
      [
        "a stranger key with the transmitter's kid",
        await sign({}, { key: await transmitter.strangerKey() }),
        { authorization: auth },
        400,
        'invalid_key',
      ],
      [
        'a stranger key with an unknown kid',
        await sign({}, { key: await transmitter.strangerKey('unknown-kid') }),
        { authorization: auth },
        400,
        'invalid_key',
      ],
      ['wrong issuer', await sign({ iss: 'https://evil.example' }), { authorization: auth }, 400, 'invalid_issuer'],
      [
        'wrong audience',
        await sign({ aud: 'https://another-receiver.example' }),
        { authorization: auth },
        400,
        'invalid_audience',
      ],
      ['typ JWT', await sign({}, { typ: 'JWT' }), { authorization: auth }, 400, 'invalid_request'],
      ['typ logout+jwt', await sign({}, { typ: 'logout+jwt' }), { authorization: auth }, 400, 'invalid_request'],
      ['iat too old', await sign({ iat: now - 7200 }), { authorization: auth }, 400, 'invalid_request'],
      ['iat in the future', await sign({ iat: now + 3600 }), { authorization: auth }, 400, 'invalid_request'],
      ['missing jti', await sign({ jti: undefined }), { authorization: auth }, 400, 'invalid_request'],
      ['missing events', await sign({ events: undefined }), { authorization: auth }, 400, 'invalid_request'],
      [
        'event not an object',
        await sign({ events: { [SESSION_REVOKED]: 'x' } }),
        { authorization: auth },
        400,
        'invalid_request',
      ],
      [
        'malformed subject',
        await sign({ sub_id: { format: 'iss_sub', iss: stack.idp.issuer } }),
        { authorization: auth },
        400,
        'invalid_request',
      ],
      [
        'unknown subject format',
        await sign({ sub_id: { format: 'nonsense', id: ALICE } }),
        { authorization: auth },
        400,
        'invalid_request',
      ],
      ['no subject at all', await sign({ sub_id: undefined }), { authorization: auth }, 400, 'invalid_request'],
      ['not a JWT', 'not-a-jwt', { authorization: auth }, 400, 'invalid_request'],
      ['empty body', '', { authorization: auth }, 400, 'invalid_request'],
      ['oversized body', `${valid}${'A'.repeat(70_000)}`, { authorization: auth }, 400, 'invalid_request'],
      ['wrong content type', valid, { authorization: auth, contentType: 'application/json' }, 415, 'invalid_request'],
      [
        'form content type',
        valid,
        { authorization: auth, contentType: 'application/x-www-form-urlencoded' },
        415,
        'invalid_request',
      ],
      ['no authorization', valid, {}, 400, 'authentication_failed'],
      ['wrong authorization', valid, { authorization: `${auth.slice(0, -1)}x` }, 400, 'authentication_failed'],
      ['authorization in another case', valid, { authorization: auth.toLowerCase() }, 400, 'authentication_failed'],
      [
        'the authorization value alone',
        valid,
        { authorization: auth.slice('Bearer '.length) },
        400,
        'authentication_failed',
      ],
    ]
    for (const [name, body, options, status, err] of cases) {
      const res = await transmitter.push(pushUrl(), body, options)
      assert.equal(res.status, status, `${name}: ${res.status} ${JSON.stringify(res.body)}`)
      const answer = res.body as { err?: string; description?: string }
      assert.equal(answer.err, err, name)
      assert.equal(typeof answer.description, 'string', name)
      assert.deepEqual(await statusesOn(alice.cookie), [200, 200, 200], `${name} ended the session`)
    }
    assert.equal(await sessionCount(), sessionsBefore)
  })

  test('a replayed SET is refused and ends nothing, on any replica', async () => {
    const set = await transmitter.sessionRevoked('user-nobody')
    assert.equal((await transmitter.push(pushUrl(), set.token, { authorization: PUSH_AUTHORIZATION })).status, 202)
    const alice = await login()
    // The same SET again, to another replica: it would end alice's new sessions were it not refused.
    const again = await transmitter.sessionRevoked(ALICE)
    assert.equal(
      (await transmitter.push(`${urls[1]}/bff/ssf/events`, again.token, { authorization: PUSH_AUTHORIZATION })).status,
      202,
    )
    const fresh = await login()
    for (const url of urls) {
      const replay = await transmitter.push(`${url}/bff/ssf/events`, again.token, { authorization: PUSH_AUTHORIZATION })
      assert.equal(replay.status, 400)
      assert.deepEqual(replay.body, { err: 'invalid_request', description: 'jti already processed' })
    }
    assert.deepEqual(await statusesOn(alice.cookie), [401, 401, 401])
    assert.deepEqual(
      await statusesOn(fresh.cookie),
      [200, 200, 200],
      'the replay ended a session created after the event',
    )
  })
})

describe('Global Token Revocation', () => {
  test('ends every session of the named user on all three replicas within a second, and not others', async () => {
    const one = await login()
    const two = await login()
    const bob = await login(BOB)
    const started = performance.now()
    const res = await transmitter.revokeGlobally(revocationUrl(), {
      format: 'iss_sub',
      iss: stack.idp.issuer,
      sub: ALICE,
    })
    assert.equal(res.status, 204)
    await assertEndedEverywhere(one.cookie, started)
    await assertEndedEverywhere(two.cookie, started)
    assert.deepEqual(await statusesOn(bob.cookie), [200, 200, 200])
  })

  test('an opaque subject names the user by sub', async () => {
    const bob = await login(BOB)
    assert.equal((await transmitter.revokeGlobally(revocationUrl(), { format: 'opaque', id: BOB.sub })).status, 204)
    assert.deepEqual(await statusesOn(bob.cookie), [401, 401, 401])
  })

  test("each bad request gets the draft's status and ends nothing", async () => {
    const alice = await login()
    const sessionsBefore = await sessionCount()
    const url = revocationUrl()
    const aliceId = { format: 'iss_sub', iss: stack.idp.issuer, sub: ALICE }
    const post = async (body: string, headers: Record<string, string>) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      })
      const text = await res.text()
      return {
        status: res.status,
        body: (text === '' ? {} : JSON.parse(text)) as { error?: string },
        authenticate: res.headers.get('www-authenticate'),
      }
    }
    const bearer = async (claims: Record<string, unknown> = {}, options = {}) => ({
      authorization: `Bearer ${await transmitter.callerToken(url, claims, options)}`,
    })
    const used = await bearer()
    assert.equal((await post(JSON.stringify({ sub_id: { format: 'opaque', id: 'user-nobody' } }), used)).status, 204)
    const now = Math.floor(Date.now() / 1000)
    const body = JSON.stringify({ sub_id: aliceId })

    const cases: Array<[string, string, Record<string, string>, number]> = [
      ['no token', body, {}, 401],
      ['basic credentials', body, { authorization: 'Basic dXNlcjpwYXNz' }, 401],
      ['not a JWT', body, { authorization: 'Bearer not-a-jwt' }, 401],
      ['wrong audience', body, await bearer({ aud: 'https://another-app.example/revoke' }), 401],
      ['wrong issuer', body, await bearer({ iss: 'https://evil.example' }), 401],
      ['expired', body, await bearer({ iat: now - 900, exp: now - 600 }), 401],
      ['no exp', body, await bearer({ exp: undefined }), 401],
      ['no jti', body, await bearer({ jti: undefined }), 401],
      ['an empty jti', body, await bearer({ jti: '' }), 401],
      ['a jti that is not a string', body, await bearer({ jti: 42 }), 401],
      ['a SET (typ secevent+jwt)', body, await bearer({}, { typ: 'secevent+jwt' }), 401],
      ['a logout token (typ logout+jwt)', body, await bearer({}, { typ: 'logout+jwt' }), 401],
      ['a lifetime of a day', body, await bearer({ exp: now + 86_400 }), 401],
      ['a stranger key', body, await bearer({}, { key: await transmitter.strangerKey() }), 401],
      ['a replayed token', body, used, 401],
      ['body not JSON', 'sub_id=x', await bearer(), 400],
      ['no sub_id', JSON.stringify({ subject: aliceId }), await bearer(), 400],
      ['sub_id not an object', JSON.stringify({ sub_id: ALICE }), await bearer(), 400],
      ['unknown format', JSON.stringify({ sub_id: { format: 'nonsense', id: ALICE } }), await bearer(), 400],
      [
        'iss_sub without sub',
        JSON.stringify({ sub_id: { format: 'iss_sub', iss: stack.idp.issuer } }),
        await bearer(),
        400,
      ],
      [
        'a user of another issuer',
        JSON.stringify({ sub_id: { format: 'iss_sub', iss: 'https://another-idp.example', sub: ALICE } }),
        await bearer(),
        403,
      ],
      [
        'an e-mail address',
        JSON.stringify({ sub_id: { format: 'email', email: 'alice@example.com' } }),
        await bearer(),
        422,
      ],
    ]
    for (const [name, requestBody, headers, status] of cases) {
      const res = await post(requestBody, headers)
      assert.equal(res.status, status, `${name}: ${res.status} ${JSON.stringify(res.body)}`)
      assert.equal(typeof res.body.error, 'string', name)
      if (status === 401) assert.match(res.authenticate ?? '', /^Bearer /, name)
      assert.deepEqual(await statusesOn(alice.cookie), [200, 200, 200], `${name} ended the session`)
    }
    const wrongType = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', ...(await bearer()) },
      body,
    })
    assert.equal(wrongType.status, 400)
    assert.equal(await sessionCount(), sessionsBefore)
  })
})

describe('log hygiene', () => {
  test('no SET, caller token or push authorization value reaches the log', () => {
    const secret = PUSH_AUTHORIZATION.slice('Bearer '.length)
    const jws = /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}/
    const leaks = stack.logs.raw.filter((line) => line.includes(secret) || jws.test(line))
    assert.deepEqual(leaks, [])
    assert.ok(
      stack.logs.lines.some((l) => l.event === 'ssf.rejected'),
      'the refusals above were logged',
    )
  })
})

describe('off by default', () => {
  test('without the settings there is no push endpoint and no revocation endpoint', async (t) => {
    const plain = await startStack({ redis })
    t.after(() => plain.close())
    const set = await transmitter.sessionRevoked(ALICE)
    assert.equal(
      (await transmitter.push(`${plain.url}/bff/ssf/events`, set.token, { authorization: PUSH_AUTHORIZATION })).status,
      404,
    )
    assert.equal(
      (await transmitter.revokeGlobally(`${plain.url}/bff/global-token-revocation`, { format: 'opaque', id: ALICE }))
        .status,
      404,
    )
  })
})
