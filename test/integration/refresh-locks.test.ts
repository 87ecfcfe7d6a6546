import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { Redis } from 'ioredis'
import { DEFAULT_USER } from '../../dev/idp/index.ts'
import { startRedisServer, startTestRedis, type RedisServerProcess, type TestRedis } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { startStack, type Stack, type StackOptions, cookieHeader } from '../helpers/stack.ts'

/**
 * Issue 14 items 1-3 and issue 13 item 2, over real Redis, the development IdP and real
 * bffgate processes: early refresh off the request path, a skew that fits the token, locks
 * that a dead holder (or a Redis restart) cannot leave blocking, and a rotating refresh token
 * that is neither spent twice nor lost when an exchange outlives the lock's lease.
 */

const CSRF = { 'x-csrf': '1' }
const ROTATING = 'openid profile email offline_access'

interface Echo {
  claims: Record<string, unknown>
  headers: Record<string, string>
  error?: string
}

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

type TestContext = { after: (fn: () => Promise<void>) => void }

async function stackWith(t: TestContext, options: { ttl?: number; skew?: number } & StackOptions = {}): Promise<Stack> {
  const { ttl = 9, skew, env, idp } = options
  const stack = await startStack({
    redis: options.redis ?? redis,
    idp: { accessTokenTtlSeconds: ttl, users: [{ ...DEFAULT_USER }], ...idp },
    env: { ...(skew !== undefined && { BFF_REFRESH_SKEW_SECONDS: String(skew) }), ...env },
  })
  t.after(() => stack.close())
  return stack
}

async function replicasOf(t: TestContext, stack: Stack, count: number): Promise<Replica[]> {
  const replicas = await Promise.all(
    Array.from({ length: count }, () => startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })),
  )
  t.after(() => Promise.all(replicas.map((r) => r.stop())).then(() => {}))
  return replicas
}

async function callApi(base: string, cookie: string): Promise<{ status: number; body: Echo; ms: number }> {
  const started = Date.now()
  const res = await fetch(`${base}/api/hello`, { headers: { ...CSRF, cookie } })
  return { status: res.status, body: (await res.json()) as Echo, ms: Date.now() - started }
}

const tokenOf = (echo: Echo): string => echo.headers.authorization!.replace(/^(Bearer|DPoP) /, '')
const refreshCalls = (stack: Stack): number => stack.idp.stats().tokenRequests.refresh_token ?? 0

/** The one session's refresh-lock key (same hash tag as its record). */
async function lockKeyOf(stack: Stack, client: Redis): Promise<string> {
  const [key] = await client.keys(`${stack.keyPrefix}session:*`)
  assert.ok(key !== undefined, 'the session is in Redis')
  return key.replace(`${stack.keyPrefix}session:`, `${stack.keyPrefix}lock:`)
}

/** Waits until the current token is inside the skew (still valid), or past its expiry. */
async function waitFor(stack: Stack, cookie: string, when: 'inside-skew' | 'expired', skew = 3): Promise<string> {
  const first = await callApi(stack.url, cookie)
  assert.equal(first.status, 200, JSON.stringify(first.body))
  const token = tokenOf(first.body)
  const { exp } = decodeJwt(token)
  const at = when === 'inside-skew' ? (exp! - skew) * 1000 + 300 : exp! * 1000 + 1100
  await sleep(Math.max(0, at - Date.now()))
  return token
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

async function metric(stack: Stack, name: string): Promise<number> {
  const found = await stack.app.bff.metrics.registry.getSingleMetric(name)?.get()
  return found?.values.reduce((sum, v) => sum + v.value, 0) ?? 0
}

describe('issue 14 item 1: a request never waits for a refresh it does not need', () => {
  for (const processes of [1, 3]) {
    test(`issue 14 item 1: a valid token inside the skew is used at once, even while the lock is held, and refreshed once in the background (${processes} replica${processes > 1 ? 's' : ''})`, async (t) => {
      const stack = await stackWith(t, { ttl: 12, skew: 4 })
      const replicas = await replicasOf(t, stack, processes - 1)
      const bases = [stack.url, ...replicas.map((r) => r.url)]
      const client = redis.client()
      const cookie = cookieHeader(stack, (await stack.login()).browser)
      const current = await waitFor(stack, cookie, 'inside-skew', 4)
      stack.idp.resetStats()

      // Another holder has the lock (for 10 s): requests with a valid token must not wait for it.
      const lockKey = await lockKeyOf(stack, client)
      assert.equal(await client.set(lockKey, 'another-holder', 'PX', 10_000, 'NX'), 'OK')
      const held = await Promise.all(bases.map((base) => callApi(base, cookie)))
      assert.equal(await client.get(lockKey), 'another-holder', 'every answer came while the lock was still held')
      for (const res of held) {
        assert.equal(res.status, 200, JSON.stringify(res.body))
        assert.equal(tokenOf(res.body), current, 'the current, still valid token')
      }
      assert.equal(refreshCalls(stack), 0, 'no exchange beside the holder')

      // The lock released: a burst over every process refreshes once, in the background.
      await client.del(lockKey)
      await sleep(2100) // past the back-off after finding the lock held
      const burst = await Promise.all(Array.from({ length: 60 }, (_, i) => callApi(bases[i % bases.length]!, cookie)))
      assert.deepEqual(
        burst.filter((r) => r.status !== 200).map((r) => r.body),
        [],
      )
      await until('the background refresh', () => refreshCalls(stack) >= 1)
      // The IdP counts the exchange when it answers; the store write follows a moment later.
      await until(
        'the background refresh to store a new token',
        async () => {
          const later = await callApi(stack.url, cookie)
          assert.equal(later.status, 200, JSON.stringify(later.body))
          return tokenOf(later.body) !== current
        },
        5000,
      )
      await sleep(500)
      assert.equal(refreshCalls(stack), 1, 'one exchange for the session, across requests and processes')
    })
  }
})

describe('issue 14 item 1: background refresh failures', () => {
  test('issue 14 item 1: while the token endpoint answers 503, requests inside the skew get 200 at once and the IdP is not hammered', async (t) => {
    const stack = await stackWith(t, { ttl: 15, skew: 5 })
    const cookies: string[] = []
    for (let i = 0; i < 3; i++) cookies.push(cookieHeader(stack, (await stack.login()).browser))
    const tokens = await Promise.all(cookies.map(async (cookie) => tokenOf((await callApi(stack.url, cookie)).body)))
    // Inside the skew of the newest token (the older ones are further in, all still valid).
    const newestExp = Math.max(...tokens.map((token) => decodeJwt(token).exp!))
    await sleep(Math.max(0, (newestExp - 5) * 1000 + 300 - Date.now()))
    assert.ok(
      Math.min(...tokens.map((token) => decodeJwt(token).exp!)) * 1000 > Date.now() + 3000,
      'all tokens valid for the whole test',
    )
    stack.idp.resetStats()
    stack.idp.failTokenRequests({ status: 503, count: 1000 })
    t.after(async () => {
      stack.idp.failTokenRequests({ status: 503, count: 0 })
    })
    const results = await Promise.all(
      cookies.flatMap((cookie) => Array.from({ length: 10 }, () => callApi(stack.url, cookie))),
    )
    assert.deepEqual(
      results.filter((r) => r.status !== 200).map((r) => r.body),
      [],
      "the IdP's failure is never shown to a request with a valid token",
    )
    await until(
      'the background attempts',
      () => stack.logs.lines.filter((line) => line.event === 'token.background_refresh_failed').length >= 1,
    )
    await sleep(200)
    const first = refreshCalls(stack)
    assert.ok(first >= 1 && first <= 3, `${first} attempts for 30 requests of 3 sessions: at most one each`)
    for (let i = 0; i < 5; i++) {
      await sleep(100)
      for (const cookie of cookies) assert.equal((await callApi(stack.url, cookie)).status, 200)
    }
    // After a failure, every session's background refresh backs off (2 s): no call per request.
    assert.equal(refreshCalls(stack), first, 'background retries are spaced while the IdP fails')
    assert.ok(
      stack.logs.lines.some((line) => line.event === 'token.background_refresh_failed'),
      'the failure is logged',
    )
  })
})

describe('issue 14 item 2: the refresh point fits the token', () => {
  test('issue 14 item 2: with the default 30 s skew and 6 s tokens, fresh tokens are used without exchanges; the capped skew is reported once', async (t) => {
    const stack = await stackWith(t, { ttl: 6 })
    assert.equal(stack.config.session.refreshSkewSeconds, 30, 'the default skew')
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    stack.idp.resetStats()
    for (let i = 0; i < 10; i++) {
      const res = await callApi(stack.url, cookie)
      assert.equal(res.status, 200, JSON.stringify(res.body))
      await sleep(100)
    }
    assert.equal(refreshCalls(stack), 0, 'a token 1 s old is not about to expire')
    assert.equal(
      stack.logs.lines.filter((line) => line.event === 'token.skew_capped').length,
      1,
      'reported once in the log',
    )
    assert.equal(await metric(stack, 'bff_refresh_skew_capped'), 1, 'and in a metric')
    // Past a third of its life before expiry it is refreshed, once.
    await waitFor(stack, cookie, 'inside-skew', 2)
    await callApi(stack.url, cookie)
    await until('the early refresh', () => refreshCalls(stack) === 1)
    assert.equal(
      stack.logs.lines.filter((line) => line.event === 'token.skew_capped').length,
      1,
      'still reported only once',
    )
  })
})

describe('issue 14 item 3: crash-safe locks', () => {
  for (const processes of [1, 3]) {
    test(`issue 14 item 3: a lock left by a killed process: a valid token never waits, an expired one about one lease (${processes} replica${processes > 1 ? 's' : ''})`, async (t) => {
      // Default lock settings.
      const stack = await stackWith(t, { ttl: 12, skew: 4 })
      assert.equal(stack.config.session.refreshLockSeconds, 2, 'the default lease')
      const others = await replicasOf(t, stack, processes - 1)
      const survivors = [stack.url, ...others.map((r) => r.url)]
      // Takeovers counted by every surviving process: this one's registry and the others' /metrics.
      const takeovers = async () => {
        let sum = await metric(stack, 'bff_refresh_lock_takeovers_total')
        for (const replica of others) {
          const text = await (await fetch(`${replica.adminUrl}/metrics`)).text()
          sum += Number(/^bff_refresh_lock_takeovers_total (\S+)$/m.exec(text)?.[1] ?? 0)
        }
        return sum
      }
      const client = redis.client()
      const cookie = cookieHeader(stack, (await stack.login()).browser)
      const lockKey = await lockKeyOf(stack, client)

      // A: the token is inside the skew; a replica starts its background refresh and dies in it.
      const doomed = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
      t.after(() => doomed.kill())
      const doomed2 = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
      t.after(() => doomed2.kill())
      const current = await waitFor(stack, cookie, 'inside-skew', 4)
      stack.idp.resetStats()
      stack.idp.setTokenDelay(60_000)
      assert.equal((await callApi(doomed.url, cookie)).status, 200)
      await until("the doomed replica's exchange", () => refreshCalls(stack) === 1)
      await doomed.kill()
      const heldBy = await client.get(lockKey)
      assert.ok(heldBy !== null, 'the dead replica left its lock')
      const valid = await Promise.all(survivors.map((base) => callApi(base, cookie)))
      assert.equal(await client.get(lockKey), heldBy, "answered while the dead holder's lock was still there")
      for (const res of valid) {
        assert.equal(res.status, 200)
        assert.equal(tokenOf(res.body), current)
      }

      // B: the token has expired; another replica dies mid-exchange holding the lock.
      await waitFor(stack, cookie, 'expired')
      const callsBefore = refreshCalls(stack)
      const pending = callApi(doomed2.url, cookie).catch(() => undefined)
      await until("the second doomed replica's exchange", () => refreshCalls(stack) === callsBefore + 1)
      await doomed2.kill()
      await pending
      assert.ok((await client.pttl(lockKey)) > 0, "the dead holder's lock is there")
      stack.idp.setTokenDelay(0)
      const takeoversBefore = await takeovers()
      const expired = await Promise.all(survivors.map((base) => callApi(base, cookie)))
      for (const res of expired) {
        assert.equal(res.status, 200, JSON.stringify(res.body))
        // One lease (2 s) at most, with a wide margin for a loaded machine; the old 10 s lock is far out.
        assert.ok(res.ms < 5000, `an expired-token request waited ${res.ms} ms on a dead holder's lock`)
      }
      assert.equal(new Set(expired.map((r) => tokenOf(r.body))).size, 1, 'one new token for all')
      assert.equal(refreshCalls(stack), callsBefore + 2, "the dead holder's exchange and one more")
      assert.equal(await takeovers(), takeoversBefore + 1, 'one takeover, by one of the survivors, counted')
      assert.ok(
        stack.logs.lines.some((line) => line.event === 'token.lock_taken_over') ||
          others.some((replica) => replica.output().includes('"event":"token.lock_taken_over"')),
        'and logged',
      )
    })
  }

  test('issue 14 item 3: a lock that came back with Redis (append-only restart) blocks an expired-token request about one lease', async (t) => {
    const server: RedisServerProcess = await startRedisServer({ appendOnly: true })
    t.after(() => server.stop())
    const persistent: TestRedis = {
      ...redis,
      url: server.url,
      prefix: () => `aof:${Math.random().toString(36).slice(2, 8)}:`,
    }
    const stack = await stackWith(t, { ttl: 6, skew: 2, redis: persistent, env: { BFF_REFRESH_LOCK_SECONDS: '3' } })
    const client = new Redis(server.url, { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    t.after(async () => {
      client.disconnect()
    })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    const lockKey = await lockKeyOf(stack, client)
    await waitFor(stack, cookie, 'expired', 2)
    stack.idp.resetStats()
    stack.idp.setTokenDelay(60_000)
    const doomed = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(() => doomed.kill())
    const pending = callApi(doomed.url, cookie).catch(() => undefined)
    await until("the doomed replica's exchange", () => refreshCalls(stack) === 1)
    // Redis dies with the lock in its append-only file, and so does the holder.
    await server.kill()
    await doomed.kill()
    await pending
    await server.restart()
    assert.ok((await client.pttl(lockKey)) > 0, 'the lock came back with Redis')
    stack.idp.setTokenDelay(0)
    let res = await callApi(stack.url, cookie)
    // The gateway may answer 503 once while it reconnects to the restarted Redis.
    for (let i = 0; res.status === 503 && i < 20; i++) {
      await sleep(100)
      res = await callApi(stack.url, cookie)
    }
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.ok(res.ms < 6000, `waited ${res.ms} ms on a lock that came back with Redis (lease 3 s)`)
    assert.equal(refreshCalls(stack), 2, "the dead holder's exchange and the survivor's")
  })
})

describe('issue 13 item 2: a rotating refresh token is never spent twice nor lost', () => {
  for (const processes of [1, 3]) {
    test(`issue 13 item 2: an exchange slower than the lock's lease: one exchange, its refresh token stored, no teardown (${processes} replica${processes > 1 ? 's' : ''})`, async (t) => {
      // Lease 1 s, token endpoint 2.5 s: only renewal keeps the lock for the whole exchange.
      const stack = await stackWith(t, {
        ttl: 3,
        skew: 1,
        env: { BFF_OIDC_SCOPES: ROTATING, BFF_REFRESH_LOCK_SECONDS: '1', BFF_OIDC_TIMEOUT_SECONDS: '10' },
      })
      const bases = [stack.url, ...(await replicasOf(t, stack, processes - 1)).map((r) => r.url)]
      const cookie = cookieHeader(stack, (await stack.login()).browser)
      for (let round = 0; round < 2; round++) {
        await waitFor(stack, cookie, 'expired', 1)
        stack.idp.resetStats()
        stack.idp.setTokenDelay(2500)
        const results = await Promise.all(
          Array.from({ length: 60 }, (_, i) => callApi(bases[i % bases.length]!, cookie)),
        )
        stack.idp.setTokenDelay(0)
        assert.deepEqual(
          results.filter((r) => r.status !== 200).map((r) => r.body),
          [],
          `round ${round}: no failure, no teardown`,
        )
        assert.equal(new Set(results.map((r) => tokenOf(r.body))).size, 1, `round ${round}: one new token`)
        assert.equal(refreshCalls(stack), 1, `round ${round}: one exchange of the rotating refresh token`)
      }
      assert.equal(await metric(stack, 'bff_sessions_ended_total'), 0)
    })
  }

  test('issue 13 item 2: a lease lost mid-exchange still stores the rotated refresh token (compare-and-set), so the next refresh works', async (t) => {
    const stack = await stackWith(t, {
      ttl: 3,
      skew: 1,
      env: { BFF_OIDC_SCOPES: ROTATING, BFF_OIDC_TIMEOUT_SECONDS: '10' },
    })
    const client = redis.client()
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    const lockKey = await lockKeyOf(stack, client)
    await waitFor(stack, cookie, 'expired', 1)
    stack.idp.resetStats()
    stack.idp.setTokenDelay(1500)
    const pending = callApi(stack.url, cookie)
    await until('the exchange', () => refreshCalls(stack) === 1)
    // The lease is gone (as after a failover that lost the key): no fence to write under.
    assert.equal(await client.del(lockKey), 1)
    const first = await pending
    stack.idp.setTokenDelay(0)
    assert.equal(first.status, 200, JSON.stringify(first.body))
    assert.ok((await metric(stack, 'bff_refresh_lock_leases_lost_total')) >= 1, 'the lost lease is counted')
    // Had the rotated refresh token been dropped, this exchange would reuse the spent one, and
    // the IdP's reuse detection would revoke the grant: 401 session_ended.
    await waitFor(stack, cookie, 'expired', 1)
    const second = await callApi(stack.url, cookie)
    assert.equal(second.status, 200, JSON.stringify(second.body))
    assert.equal(refreshCalls(stack), 2)
  })

  test('issue 13 item 2: an ID token that fails its checks after a rotating exchange does not lose the new refresh token', async (t) => {
    const stack = await stackWith(t, { ttl: 3, skew: 1, env: { BFF_OIDC_SCOPES: ROTATING } })
    const cookie = cookieHeader(stack, (await stack.login()).browser)
    for (const kind of ['wrong_iss', 'bad_signature'] as const) {
      await waitFor(stack, cookie, 'expired', 1)
      stack.idp.misbehaveNextTokenResponse(kind, { grant: 'refresh_token' })
      const refused = await callApi(stack.url, cookie)
      assert.equal(stack.idp.pendingMisbehaviour(), undefined, `${kind}: the corrupted answer was sent`)
      assert.equal(
        refused.status,
        503,
        `${kind}: an answer that fails validation is not used: ${JSON.stringify(refused.body)}`,
      )
      const next = await callApi(stack.url, cookie)
      assert.equal(next.status, 200, `${kind}: the rotated refresh token was kept: ${JSON.stringify(next.body)}`)
    }
    assert.ok(
      !stack.logs.raw.some((line) => stack.idp.issuedTokens().some((token) => line.includes(token))),
      'no token in the log',
    )
  })
})
