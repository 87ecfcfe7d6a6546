import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { DEFAULT_USER } from '../../dev/idp/index.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { BOB, startStack, type Stack, type StackOptions, cookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }

interface Echo {
  claims: Record<string, unknown>
  headers: Record<string, string>
}

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

/** A stack whose access tokens live `ttl` seconds and are refreshed `skew` seconds early. */
async function stackWith(
  t: { after: (fn: () => Promise<void>) => void },
  options: { ttl?: number; skew?: number } & StackOptions = {},
): Promise<Stack> {
  const { ttl = 3, skew = 1, env, idp } = options
  const stack = await startStack({
    redis,
    idp: { accessTokenTtlSeconds: ttl, users: [{ ...DEFAULT_USER }, BOB], ...idp },
    env: { BFF_REFRESH_SKEW_SECONDS: String(skew), ...env },
  })
  t.after(() => stack.close())
  return stack
}

async function callApi(
  base: string,
  cookie: string,
  path = '/api/hello',
): Promise<{ status: number; body: Echo & { error?: string }; headers: Headers }> {
  const res = await fetch(`${base}${path}`, { headers: { ...CSRF, cookie } })
  return { status: res.status, body: (await res.json()) as Echo & { error?: string }, headers: res.headers }
}

const tokenOf = (echo: Echo) => echo.headers.authorization!.replace(/^Bearer /, '')

async function sessionKeys(stack: Stack): Promise<string[]> {
  return await redis.client().keys(`${stack.keyPrefix}session:*`)
}

/**
 * Waits until the current access token needs a refresh: past its `exp` (so every request
 * needs one, whatever the clock skew between receipt and `iat`), or with `withinSkew` only
 * until it is inside the refresh skew (still valid).
 */
async function waitForExpiry(stack: Stack, cookie: string, { withinSkew = false } = {}): Promise<string> {
  const first = await callApi(stack.url, cookie)
  assert.equal(first.status, 200)
  const token = tokenOf(first.body)
  const { exp } = decodeJwt(token)
  // bffgate stores expires_in from when it received the token, so allow for the delay.
  const until = withinSkew ? (exp! - stack.config.session.refreshSkewSeconds) * 1000 + 150 : exp! * 1000 + 1100
  await sleep(Math.max(0, until - Date.now()))
  return token
}

describe('transparent refresh', () => {
  test('an expired access token is refreshed transparently: the upstream sees a new valid token', async (t) => {
    const stack = await stackWith(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const old = await waitForExpiry(stack, cookie)
    stack.idp.resetStats()
    const res = await callApi(stack.url, cookie)
    assert.equal(res.status, 200)
    const fresh = tokenOf(res.body)
    assert.notEqual(fresh, old)
    assert.ok(decodeJwt(fresh).exp! > Date.now() / 1000, 'the new token is valid')
    assert.equal(res.body.claims.sub, 'user-alice', 'the API verified the new token')
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
    // The ORT was not rotated: a second expiry is refreshed with the same refresh token.
    await waitForExpiry(stack, cookie)
    assert.equal((await callApi(stack.url, cookie)).status, 200)
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 2)
  })

  test('100 concurrent requests on one session with an expired token cause exactly one exchange', async (t) => {
    const stack = await stackWith(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    await waitForExpiry(stack, cookie)
    stack.idp.resetStats()
    const results = await Promise.all(Array.from({ length: 100 }, () => callApi(stack.url, cookie)))
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200])
    assert.equal(new Set(results.map((r) => tokenOf(r.body))).size, 1, 'every request got the one new token')
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
  })

  for (const mode of ['online_access', 'offline_access'] as const) {
    test(`100 concurrent requests over three processes sharing Redis cause exactly one exchange (${mode})`, async (t) => {
      const stack = await stackWith(t, { env: { BFF_OIDC_SCOPES: `openid profile email ${mode}` } })
      const replicas: Replica[] = await Promise.all([
        startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' }),
        startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' }),
      ])
      t.after(() => Promise.all(replicas.map((r) => r.stop())).then(() => {}))
      const { browser } = await stack.login()
      const cookie = cookieHeader(stack, browser)
      const bases = [stack.url, ...replicas.map((r) => r.url)]
      for (let round = 0; round < 2; round++) {
        await waitForExpiry(stack, cookie)
        stack.idp.resetStats()
        const results = await Promise.all(Array.from({ length: 100 }, (_, i) => callApi(bases[i % 3]!, cookie)))
        assert.deepEqual(
          results.filter((r) => r.status !== 200).map((r) => r.body),
          [],
          `round ${round}`,
        )
        assert.equal(new Set(results.map((r) => tokenOf(r.body))).size, 1)
        assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1, `round ${round}: exchanges`)
      }
    })
  }

  test('a winner killed mid-exchange blocks the session no longer than the lock TTL', async (t) => {
    const stack = await stackWith(t, { env: { BFF_REFRESH_LOCK_SECONDS: '2', BFF_OIDC_TIMEOUT_SECONDS: '1' } })
    const winner = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(() => winner.kill())
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    await waitForExpiry(stack, cookie)
    stack.idp.resetStats()
    stack.idp.setTokenDelay(10_000)
    const doomed = callApi(winner.url, cookie).catch(() => undefined)
    while ((stack.idp.stats().tokenRequests.refresh_token ?? 0) === 0) await sleep(10)
    await winner.kill() // holds the lock, mid-exchange
    stack.idp.setTokenDelay(0)
    await doomed
    const started = Date.now()
    const res = await callApi(stack.url, cookie)
    const waited = Date.now() - started
    assert.equal(res.status, 200, JSON.stringify(res.body))
    // It waited for the dead winner's lock to lapse (it did not exchange at once), and no longer.
    assert.ok(waited >= 1500 && waited < 2000 + 900, `waited ${waited} ms for a 2 s lock TTL`)
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 2, "the dead winner's and the survivor's")
  })
})

describe('teardown', () => {
  test('after the IdP session is revoked, the next exchange ends the session: 401 session_ended, cookie cleared, keys gone, others untouched', async (t) => {
    const stack = await stackWith(t)
    const alice = await stack.login()
    const bob = await stack.login({ user: BOB })
    const aliceCookie = cookieHeader(stack, alice.browser)
    const bobCookie = cookieHeader(stack, bob.browser)
    assert.equal((await sessionKeys(stack)).length, 2)
    assert.equal((await redis.client().keys(`${stack.keyPrefix}bysid:*`)).length, 2)
    assert.equal(await stack.idp.revokeSessions('user-alice'), 1)
    await waitForExpiry(stack, aliceCookie)
    const res = await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie: aliceCookie } })
    assert.equal(res.status, 401)
    assert.deepEqual(((await res.json()) as { error: string }).error, 'session_ended')
    assert.match(res.headers.getSetCookie().join('\n'), /__Host-Http-bff=;.*Max-Age=0/)
    const left = await sessionKeys(stack)
    assert.equal(left.length, 1, "alice's session key is gone, bob's remains")
    // Emptied index sets disappear: one sid and one sub index left, bob's.
    assert.equal((await redis.client().keys(`${stack.keyPrefix}bysid:*`)).length, 1)
    assert.equal((await redis.client().keys(`${stack.keyPrefix}bysub:*`)).length, 1)
    assert.equal((await callApi(stack.url, bobCookie)).status, 200)
    assert.ok(stack.logs.lines.some((l) => l.event === 'session.ended' && l.cause === 'invalid_grant'))
  })

  test('an invalid_grant on the very first exchange is also logged as a probable misconfiguration', async (t) => {
    const stack = await stackWith(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    await stack.idp.revokeSessions('user-alice')
    await waitForExpiry(stack, cookie)
    assert.equal((await callApi(stack.url, cookie)).status, 401)
    assert.ok(stack.logs.lines.some((l) => l.event === 'token.first_exchange_invalid_grant'))
  })
})

describe('keep-alive', () => {
  test('an active API user outlives several IdP idle periods; a user who only polls /bff/user does not', async (t) => {
    // IdP idle 3 s; access tokens live an hour, so only keep-alive exchanges can save the session.
    const stack = await stackWith(t, {
      ttl: 3600,
      skew: 30,
      idp: { sessionIdleSeconds: 3, sessionAbsoluteSeconds: 60 },
      env: { BFF_SESSION_IDLE_SECONDS: '3', BFF_SESSION_ABSOLUTE_SECONDS: '60' },
    })
    const active = cookieHeader(stack, (await stack.login()).browser)
    const poller = cookieHeader(stack, (await stack.login({ user: BOB })).browser)
    stack.idp.resetStats()
    const until = Date.now() + 8000
    let calls = 0
    while (Date.now() < until) {
      assert.equal((await callApi(stack.url, active)).status, 200)
      calls++
      const user = await fetch(`${stack.url}/bff/user`, { headers: { cookie: poller } })
      if (Date.now() < until - 5000) assert.equal(user.status, 200)
      await sleep(700)
    }
    assert.equal((await callApi(stack.url, active)).status, 200, 'the active user was logged out')
    assert.ok((stack.idp.stats().tokenRequests.refresh_token ?? 0) >= 3, 'keep-alive exchanges happened')
    // One keep-alive per half idle period (1.5 s) over 8 s, plus the final call: about 6.
    const exchanges = stack.idp.stats().tokenRequests.refresh_token ?? 0
    assert.ok(
      exchanges <= Math.ceil(8 / 1.5) + 1 && exchanges < calls / 2,
      `${exchanges} exchanges for ${calls} API calls: keep-alive exchanges are rare, not per request`,
    )
    assert.equal(
      (await fetch(`${stack.url}/bff/user`, { headers: { cookie: poller } })).status,
      401,
      'polling /bff/user kept a session alive',
    )
    assert.equal((await callApi(stack.url, poller)).status, 401)
  })
})

describe('session check', () => {
  test('with BFF_SESSION_CHECK_SECONDS a revoked IdP session is noticed within that interval, though the access token is valid', async (t) => {
    const stack = await stackWith(t, { ttl: 3600, skew: 30, env: { BFF_SESSION_CHECK_SECONDS: '1' } })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    assert.equal((await callApi(stack.url, cookie)).status, 200)
    await stack.idp.revokeSessions('user-alice')
    assert.equal((await callApi(stack.url, cookie)).status, 200, 'checked again before the interval passed')
    await sleep(1100)
    const res = await callApi(stack.url, cookie)
    assert.equal(res.status, 401)
    assert.equal(res.body.error, 'session_ended')
  })
})

describe('IdP outage', () => {
  test('while the IdP is down, valid tokens still pass, expired ones get 503 with Retry-After, and no session is lost', async (t) => {
    // A wide skew (4 s of a 6 s token), so the "still valid within the skew" step does not race the expiry.
    const stack = await stackWith(t, {
      ttl: 6,
      skew: 4,
      env: { BFF_OIDC_TIMEOUT_SECONDS: '1', BFF_REFRESH_LOCK_SECONDS: '3' },
    })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    assert.equal((await callApi(stack.url, cookie)).status, 200, 'the demo API caches the IdP keys before the outage')
    await stack.idp.stop()
    try {
      assert.equal((await callApi(stack.url, cookie)).status, 200, 'a valid token needs no IdP')
      await waitForExpiry(stack, cookie, { withinSkew: true })
      const { exp } = decodeJwt(tokenOf((await callApi(stack.url, cookie)).body))
      assert.ok(exp! > Date.now() / 1000, 'within the skew the current token is still used')
      await sleep(Math.max(0, exp! * 1000 - Date.now()) + 100)
      const down = await callApi(stack.url, cookie)
      assert.equal(down.status, 503)
      assert.equal(down.body.error, 'idp_unavailable')
      assert.ok(Number(down.headers.get('retry-after')) > 0)
      assert.equal((await sessionKeys(stack)).length, 1, 'the session was deleted')
    } finally {
      await stack.idp.start()
    }
    assert.equal((await callApi(stack.url, cookie)).status, 200, 'did not recover when the IdP came back')
  })

  test('a 503 or 429 from the token endpoint is transient: no teardown', async (t) => {
    // A wide skew (4 s of a 6 s token): the "still valid" step must not race the expiry under load.
    const stack = await stackWith(t, { ttl: 6, skew: 4 })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    const token = await waitForExpiry(stack, cookie, { withinSkew: true })
    stack.idp.failTokenRequests({ status: 503, count: 1 })
    const first = await callApi(stack.url, cookie)
    assert.equal(first.status, 200, 'the still-valid token is used')
    assert.equal(tokenOf(first.body), token)
    await sleep(Math.max(0, decodeJwt(token).exp! * 1000 - Date.now()) + 1100)
    stack.idp.failTokenRequests({ status: 429, count: 1, retryAfter: 1 })
    const limited = await callApi(stack.url, cookie)
    assert.equal(limited.status, 503)
    assert.equal((await sessionKeys(stack)).length, 1)
    assert.equal((await callApi(stack.url, cookie)).status, 200)
  })
})

describe('upstream refusal', () => {
  test('an upstream 401 invalid_token causes one exchange and one replay', async (t) => {
    const stack = await stackWith(t, { ttl: 3600, skew: 30 })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    const first = tokenOf((await callApi(stack.url, cookie)).body)
    stack.idp.resetStats()
    const seen = stack.api.requests().length
    stack.api.rejectNext(1)
    const res = await callApi(stack.url, cookie)
    assert.equal(res.status, 200)
    assert.notEqual(tokenOf(res.body), first)
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
    assert.equal(stack.api.requests().length - seen, 2, 'one refused call and one replay')
    // Refused twice: one replay only, then the 401 passes through.
    stack.api.rejectNext(2)
    const twice = await callApi(stack.url, cookie)
    assert.equal(twice.status, 401)
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 2)
  })

  test('a request with a body is not replayed: the 401 passes through', async (t) => {
    const stack = await stackWith(t, { ttl: 3600, skew: 30 })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    stack.idp.resetStats()
    stack.api.rejectNext(1)
    const res = await fetch(`${stack.url}/api/orders`, {
      method: 'POST',
      headers: { ...CSRF, cookie, 'content-type': 'application/json' },
      body: '{"a":1}',
    })
    assert.equal(res.status, 401)
    assert.match(res.headers.get('www-authenticate') ?? '', /invalid_token/)
    assert.equal(stack.idp.stats().tokenRequests.refresh_token ?? 0, 0)
  })
})

describe('per-route audience', () => {
  test('a route with its own audience gets its own token, cached and refreshed separately', async (t) => {
    const stack = await startStack({
      redis,
      idp: { accessTokenTtlSeconds: 3600, extraApis: [{ audience: 'https://orders.bffgate.test' }] },
      routes: (api) => [
        { path: '/api', upstream: api },
        { path: '/orders', upstream: api, audience: 'https://orders.bffgate.test' },
      ],
    })
    t.after(() => stack.close())
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    stack.idp.resetStats()
    const main = await callApi(stack.url, cookie)
    assert.equal(decodeJwt(tokenOf(main.body)).aud, 'https://api.bffgate.test')
    const orders = await fetch(`${stack.url}/orders/1`, { headers: { ...CSRF, cookie } })
    const ordersToken = ((await orders.json()) as Echo).headers.authorization!.replace(/^Bearer /, '')
    assert.equal(decodeJwt(ordersToken).aud, 'https://orders.bffgate.test')
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1, 'one exchange for the second audience')
    const again = await fetch(`${stack.url}/orders/2`, { headers: { ...CSRF, cookie } })
    assert.equal(((await again.json()) as Echo).headers.authorization, `Bearer ${ordersToken}`, 'cached per audience')
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
  })
})
