import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createBrowser, loginAtDevIdp, type Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, USER, type Stack, type StackOptions } from '../helpers/stack.ts'

// Issue 13 items 7, 8 and 9: the login's own failure modes, through the real HTTP surface.

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

async function stackFor(t: { after: (fn: () => Promise<void>) => void }, options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack({ redis, ...options })
  t.after(() => stack.close())
  return stack
}

const SESSION_COOKIE = '__Host-Http-bff'
const cookieOf = (stack: Stack, browser: Browser) =>
  browser
    .cookies(stack.url)
    .filter((c) => c.name === SESSION_COOKIE)
    .map((c) => `${c.name}=${c.value}`)
    .join('; ')
const userStatus = async (stack: Stack, cookie: string) =>
  (await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).status
const backInApp = (stack: Stack) => (url: URL) => url.origin === stack.url && !url.pathname.startsWith('/bff/')

/** Whether `/bff/login` starts a login (302 to the IdP) for this returnTo, or refuses it. */
async function loginStart(stack: Stack, returnTo: string, browser = createBrowser()) {
  return browser.get(`${stack.url}/bff/login?returnTo=${encodeURIComponent(returnTo)}`)
}

/** The largest `count` (up to `max`) for which `/bff/login` accepts `make(count)`. */
async function largestAccepted(stack: Stack, make: (count: number) => string, max: number): Promise<number> {
  let [low, high] = [0, max]
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    const res = await loginStart(stack, make(mid))
    if (res.status === 302) low = mid
    else {
      assert.equal(res.status, 400, `returnTo of ${mid} units: ${res.status} ${res.text}`)
      high = mid - 1
    }
  }
  return low
}

describe('returnTo and the login cookie (issue 13 item 7)', () => {
  const variants: Array<[string, (n: number) => string]> = [
    ['long ASCII', (n) => `/${'a'.repeat(n)}`],
    ['a query string', (n) => `/search?q=${'x'.repeat(n)}`],
    ['multi-byte UTF-8 that grows sixfold when percent-encoded', (n) => `/${'é'.repeat(n)}`],
    ['astral characters (four UTF-8 bytes each)', (n) => `/${'😀'.repeat(n)}`],
    ['characters percent-encoded on the way in', (n) => `/${'%20'.repeat(n)}`],
  ]

  for (const dpop of [false, true]) {
    test(`issue 13 item 7: a returnTo /bff/login accepts always completes the login, and a longer one is refused there with 400 JSON before the IdP is visited${dpop ? ' (DPoP: a key in the login state)' : ''}`, async (t) => {
      const stack = await stackFor(t, dpop ? { env: { BFF_DPOP: 'true' } } : {})
      for (const [name, make] of variants) {
        const largest = await largestAccepted(stack, make, 2100)
        assert.ok(largest > 10, `${name}: only ${largest} accepted`)
        // Refused at /bff/login: a JSON 400, no redirect to the IdP, no login cookie.
        const refused = await loginStart(stack, make(largest + 1))
        assert.equal(refused.status, 400, name)
        assert.equal(refused.json<{ error: string }>().error, 'return_to_too_long', name)
        assert.equal(refused.location, undefined, name)
        assert.deepEqual(refused.setCookies, [], `${name}: a login cookie for a refused attempt`)
        // The largest accepted one goes all the way through the IdP and lands where it said.
        const { browser, result } = await stack.login({ returnTo: make(largest) })
        assert.ok(
          result.matched,
          `${name} (${largest}): the login ended at ${result.url.href} with ${result.response.status} ${result.response.text.slice(0, 200)}`,
        )
        assert.equal(
          decodeURIComponent(result.url.pathname + result.url.search),
          decodeURIComponent(new URL(make(largest), stack.url).pathname + new URL(make(largest), stack.url).search),
          name,
        )
        assert.equal(await userStatus(stack, cookieOf(stack, browser)), 200, name)
      }
      // Longer than any login cookie could carry: refused too, not silently dropped.
      for (const returnTo of [`/${'a'.repeat(2048)}`, `/${'a'.repeat(10_000)}`]) {
        const res = await loginStart(stack, returnTo)
        assert.equal(res.status, 400, `${returnTo.length} characters`)
        assert.equal(res.json<{ error: string }>().error, 'return_to_too_long')
      }
    })
  }

  test('issue 13 item 7: many pending login attempts with the longest returnTo: the attempts are pruned, and the last one completes', async (t) => {
    const stack = await stackFor(t)
    const make = (n: number) => `/${'é'.repeat(n)}`
    const largest = await largestAccepted(stack, make, 2100)
    const browser = createBrowser()
    const until = (url: URL) => url.pathname === '/bff/callback'
    // Tabs that started logging in and were abandoned, then one that finishes.
    for (let i = 0; i < 6; i++) assert.equal((await loginStart(stack, make(largest), browser)).status, 302)
    const pending = browser.cookies(stack.url).filter((c) => c.name.startsWith('__Host-bff-login-'))
    assert.ok(pending.length <= 4, `${pending.length} login cookies pending`)
    const head = pending.map((c) => `${c.name}=${c.value}`).join('; ').length
    assert.ok(head < 12_000, `the Cookie header of the callback is ${head} bytes`)
    const last = await loginAtDevIdp(
      browser,
      `${stack.url}/bff/login?returnTo=${encodeURIComponent(make(largest))}`,
      USER,
      { until },
    )
    assert.ok(last.matched)
    const landed = await browser.follow(last.url, { until: backInApp(stack) })
    assert.ok(landed.matched, `the callback answered ${landed.response.status} ${landed.response.text.slice(0, 200)}`)
    assert.equal(await userStatus(stack, cookieOf(stack, browser)), 200)
  })
})

describe('an IdP session older than the absolute lifetime (issue 13 item 8)', () => {
  const ABSOLUTE = 3

  test('issue 13 item 8: logging in again after BFF_SESSION_ABSOLUTE_SECONDS works: the IdP is asked for max_age and authenticates afresh', async (t) => {
    const stack = await stackFor(t, {
      env: { BFF_SESSION_ABSOLUTE_SECONDS: String(ABSOLUTE), BFF_SESSION_IDLE_SECONDS: String(ABSOLUTE) },
    })
    const { browser } = await stack.login()
    assert.equal(await userStatus(stack, cookieOf(stack, browser)), 200)
    await sleep((ABSOLUTE + 1) * 1000)
    assert.equal(await userStatus(stack, cookieOf(stack, browser)), 401, 'the session outlived its absolute lifetime')
    // Same browser, same IdP session (SSO): the IdP must not repeat the old authentication.
    const again = await stack.login({ browser })
    assert.ok(again.result.matched, `the login ended at ${again.result.url.href} with ${again.result.response.status}`)
    assert.equal(await userStatus(stack, cookieOf(stack, browser)), 200)
    const authorization = again.result.redirects.find((u) => u.origin === stack.idp.issuer && u.pathname === '/auth')
    assert.equal(authorization?.searchParams.get('max_age'), String(ABSOLUTE), 'OIDC Core max_age')
  })

  test('issue 13 item 8: with an IdP that ignores max_age, the callback asks once more with prompt=login, and the login works', async (t) => {
    const stack = await stackFor(t, {
      env: { BFF_SESSION_ABSOLUTE_SECONDS: String(ABSOLUTE), BFF_SESSION_IDLE_SECONDS: String(ABSOLUTE) },
      idp: { ignoreAuthorizationParameters: ['max_age'] },
    })
    const { browser } = await stack.login()
    await sleep((ABSOLUTE + 1) * 1000)
    const again = await stack.login({ browser })
    assert.ok(again.result.matched, `the login ended at ${again.result.url.href} with ${again.result.response.status}`)
    const authorizations = again.result.redirects.filter((u) => u.origin === stack.idp.issuer && u.pathname === '/auth')
    assert.deepEqual(
      authorizations.map((u) => u.searchParams.get('prompt')),
      [null, 'login'],
    )
    assert.equal(await userStatus(stack, cookieOf(stack, browser)), 200)
    // Two logins finished, each once: the retry's redirect back to the IdP is no login of its own.
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text()
    assert.match(metrics, /^bff_logins_total\{outcome="success"\} 2$/m)
    assert.doesNotMatch(metrics, /^bff_logins_total\{outcome="(?!success)/m)
  })

  test('issue 13 item 8: with an IdP that ignores both max_age and prompt=login, the login ends in a clear 400, after one retry, not a loop', async (t) => {
    const stack = await stackFor(t, {
      env: { BFF_SESSION_ABSOLUTE_SECONDS: String(ABSOLUTE), BFF_SESSION_IDLE_SECONDS: String(ABSOLUTE) },
      idp: { ignoreAuthorizationParameters: ['max_age', 'prompt'] },
    })
    const { browser } = await stack.login()
    await sleep((ABSOLUTE + 1) * 1000)
    const result = await browser.follow(`${stack.url}/bff/login`, { maxHops: 30 })
    assert.equal(result.response.status, 400, result.response.text)
    assert.equal(result.response.json<{ error: string }>().error, 'login_failed')
    assert.equal(result.redirects.filter((u) => u.pathname === '/bff/callback').length, 2, 'one retry')
    assert.equal(await userStatus(stack, cookieOf(stack, browser)), 401)
  })
})

describe('the session a browser already has (issue 13 item 9)', () => {
  /** Follows the IdP's redirect to the callback as a browser does: cross-site, so without the SameSite=Strict cookie. */
  async function crossSiteCallback(browser: Browser, callback: URL) {
    const lax = browser.cookies(callback).filter((c) => c.sameSite?.toLowerCase() !== 'strict')
    return browser.get(callback, { cookie: lax.map((c) => `${c.name}=${c.value}`).join('; ') })
  }

  test("issue 13 item 9: a new login ends the session the browser had, though its Strict cookie stays home on the IdP's redirect", async (t) => {
    const stack = await stackFor(t)
    const { browser } = await stack.login()
    const old = cookieOf(stack, browser)
    assert.equal(await userStatus(stack, old), 200)
    // /bff/login is a same-site navigation from the SPA (the Strict cookie is sent); the IdP's
    // redirect back is cross-site (it is not).
    const toCallback = await loginAtDevIdp(browser, `${stack.url}/bff/login?returnTo=/again`, USER, {
      until: (u) => u.pathname === '/bff/callback',
    })
    assert.ok(toCallback.matched)
    const callback = await crossSiteCallback(browser, toCallback.url)
    assert.equal(callback.status, 302, callback.text)
    assert.equal(callback.location?.pathname, '/again')
    const fresh = cookieOf(stack, browser)
    assert.notEqual(fresh, old)
    assert.equal(await userStatus(stack, fresh), 200)
    assert.equal(await userStatus(stack, old), 401, 'the replaced session is still alive behind the new cookie')
  })

  test('issue 13 item 9: a login started with an ended, foreign or garbage session cookie still works and ends nothing else', async (t) => {
    const stack = await stackFor(t)
    const bystander = cookieOf(stack, (await stack.login()).browser)
    for (const value of [
      'garbage',
      'A'.repeat(71),
      bystander.split('=')[1]!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
    ]) {
      const browser = createBrowser()
      browser.setCookie(stack.url, `${SESSION_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict`)
      const toCallback = await loginAtDevIdp(browser, `${stack.url}/bff/login`, USER, {
        until: (u) => u.pathname === '/bff/callback',
      })
      const callback = await crossSiteCallback(browser, toCallback.url)
      assert.equal(callback.status, 302, `${value}: ${callback.text}`)
      assert.equal(await userStatus(stack, cookieOf(stack, browser)), 200)
    }
    assert.equal(await userStatus(stack, bystander), 200, "another browser's session was ended")
  })

  test('issue 13 item 9: GET /bff/logged-out never leaves a live session behind a cleared cookie, whoever navigates there', async (t) => {
    const stack = await stackFor(t)
    const { browser } = await stack.login()
    const cookie = cookieOf(stack, browser)
    const navigations: Array<[string, Record<string, string>]> = [
      ['cross-site (no Strict cookie)', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }],
      ['same-site, with the cookie', { cookie, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate' }],
      ['no fetch metadata', {}],
    ]
    for (const [name, headers] of navigations) {
      const res = await fetch(`${stack.url}/bff/logged-out`, { redirect: 'manual', headers })
      assert.equal(res.status, 302, name)
      const clears = res.headers.getSetCookie().some((line) => line.startsWith(`${SESSION_COOKIE}=`))
      // Either the cookie stays, or the session it names is over: never a cleared cookie over a live session.
      if (clears) assert.equal(await userStatus(stack, cookie), 401, `${name}: cookie cleared, session alive`)
      else
        assert.equal(await userStatus(stack, cookie), 200, `${name}: a navigation anyone can cause ended the session`)
    }
  })
})
