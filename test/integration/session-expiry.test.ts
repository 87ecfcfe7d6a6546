/**
 * issue 17 item 5: IdP-declared session ceilings. The development IdP puts IPSIE SL1
 * `session_expiry` in its ID tokens; bffgate's local session never outlives it, over real
 * HTTP with real Redis.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis?.stop()
})

interface UserAnswer {
  claims: Record<string, unknown>
  session: { expiresAt: number; absoluteExpiresAt: number }
}
const userOf = async (stack: Stack, browser: Browser) => {
  const res = await browser.get(`${stack.url}/bff/user`)
  return { status: res.status, body: res.status === 200 ? res.json<UserAnswer>() : undefined }
}
const now = () => Math.floor(Date.now() / 1000)

test("issue 17 item 5: the absolute deadline is capped at login by the ID token's session_expiry (cookie, Redis lifetime and /bff/user alike)", async (t) => {
  // The IdP session lasts 60 s; bffgate is configured for 30 days and must not outlive it.
  const stack = await startStack({ redis, idp: { sessionExpiryClaim: true, sessionAbsoluteSeconds: 60 } })
  t.after(() => stack.close())
  const started = now()
  const { browser, result } = await stack.login()
  assert.equal(result.matched, true)
  const { body } = await userOf(stack, browser)
  assert.ok(body !== undefined)
  assert.ok(
    body.session.absoluteExpiresAt >= started + 59 && body.session.absoluteExpiresAt <= now() + 60,
    `absolute end ${body.session.absoluteExpiresAt - started} s after login`,
  )
  assert.ok(body.session.expiresAt <= body.session.absoluteExpiresAt)
  assert.equal(body.claims.session_expiry, undefined, 'a protocol claim, not shown to the SPA')
  const cookie = browser.cookie(stack.url, '__Host-Http-bff')!
  assert.ok(Number(cookie.attributes['max-age']) <= 60, `cookie Max-Age ${cookie.attributes['max-age']}`)
  const keys = await redis.client().keys(`${stack.keyPrefix}session:*`)
  assert.equal(keys.length, 1)
  const ttl = await redis.client().pttl(keys[0]!)
  assert.ok(ttl > 0 && ttl <= 60_000, `Redis lifetime ${ttl} ms`)
})

test('issue 17 item 5: the session ends when the declared session_expiry passes', async (t) => {
  const stack = await startStack({ redis, idp: { sessionExpiryClaim: true, sessionAbsoluteSeconds: 3 } })
  t.after(() => stack.close())
  const { browser } = await stack.login()
  assert.equal((await userOf(stack, browser)).status, 200)
  await sleep(3500)
  // The cookie's Max-Age was capped too: the browser itself has dropped it.
  const later = await browser.get(`${stack.url}/bff/user`)
  assert.equal(later.status, 401)
  assert.equal(later.json<{ error: string }>().error, 'login_required')
  assert.deepEqual(await redis.client().keys(`${stack.keyPrefix}session:*`), [], 'and Redis has let the session go')
})

test('issue 17 item 5: a refresh whose new ID token declares an earlier session_expiry lowers the deadline; a later one never raises it', async (t) => {
  const stack = await startStack({
    redis,
    idp: { sessionExpiryClaim: true, accessTokenTtlSeconds: 2 },
    env: { BFF_REFRESH_SKEW_SECONDS: '1' },
  })
  t.after(() => stack.close())
  const { browser } = await stack.login()
  const first = (await userOf(stack, browser)).body!
  assert.ok(first.session.absoluteExpiresAt > now() + 86_400, "the IdP session's own end (30 days)")

  // A later ceiling is ignored.
  stack.idp.declareSessionExpiry('user-alice', first.session.absoluteExpiresAt + 3600)
  // Past the 2 s token's expiry, so the request itself waits for the refresh (an early refresh
  // inside the skew would run in the background of a request that does not wait for it).
  await sleep(2100)
  stack.idp.resetStats()
  assert.equal((await browser.get(`${stack.url}/api/hello`, { 'x-csrf': '1' })).status, 200)
  assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
  assert.equal((await userOf(stack, browser)).body!.session.absoluteExpiresAt, first.session.absoluteExpiresAt)

  // An earlier one, in 4 s, takes effect at the next refresh.
  const ceiling = now() + 5
  stack.idp.declareSessionExpiry('user-alice', ceiling)
  await sleep(2100)
  assert.equal((await browser.get(`${stack.url}/api/hello`, { 'x-csrf': '1' })).status, 200)
  assert.equal(stack.idp.stats().tokenRequests.refresh_token, 2)
  const lowered = (await userOf(stack, browser)).body!
  assert.equal(lowered.session.absoluteExpiresAt, ceiling)
  assert.ok(lowered.session.expiresAt <= ceiling)
  await sleep((ceiling - Date.now() / 1000) * 1000 + 500)
  const ended = await browser.get(`${stack.url}/api/hello`, { 'x-csrf': '1' })
  assert.equal(ended.status, 401)
  assert.equal(ended.json<{ error: string }>().error, 'session_ended')
})

test('issue 17 item 5: a login whose ID token declares a session_expiry already past is refused with 400 login_failed and creates no session', async (t) => {
  const stack = await startStack({ redis, idp: { sessionExpiryClaim: true } })
  t.after(() => stack.close())
  stack.idp.declareSessionExpiry('user-alice', now() - 10)
  const { browser, result } = await stack.login()
  assert.equal(result.response.status, 400)
  assert.equal(result.response.json<{ error: string }>().error, 'login_failed')
  assert.equal(browser.cookie(stack.url, '__Host-Http-bff'), undefined)
  assert.deepEqual(await redis.client().keys(`${stack.keyPrefix}session:*`), [])
})
