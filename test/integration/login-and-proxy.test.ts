import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { createBrowser, loginAtDevIdp, type Browser } from '../helpers/browser.ts'
import { dumpRedis, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { cookieHeader, startStack, USER, type Stack } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }

let redis: TestRedis
let stack: Stack

before(async () => {
  redis = await startTestRedis()
  stack = await startStack({ redis })
})
after(async () => {
  await stack?.close()
  await redis?.stop()
})

/** Every key and value under the stack's prefix, as one searchable string. */
async function redisDump(): Promise<{ keys: string[]; text: string }> {
  const { keys, values } = await dumpRedis(redis.client(), stack.keyPrefix)
  return { keys, text: values.map((v) => v.toString('latin1')).join('\n') }
}

/** A JWT in compact form: base64url JSON header and payload, each starting `{"`. */
const JWT_SHAPE = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./

function loginCookies(browser: Browser) {
  return browser.cookies(stack.url).filter((c) => c.name.startsWith('__Host-bff-login-'))
}

describe('login', () => {
  test('a full login sets an opaque __Host-Http- session cookie and lands on returnTo', async () => {
    const { browser, result } = await stack.login({ returnTo: '/orders/42?tab=items' })
    assert.equal(result.url.href, `${stack.url}/orders/42?tab=items`)
    const cookie = browser.cookie(stack.url, '__Host-Http-bff')
    assert.ok(cookie, 'session cookie set')
    assert.match(cookie.value, /^[A-Za-z0-9_-]{71}$/)
    assert.equal(cookie.httpOnly, true)
    assert.equal(cookie.secure, true)
    assert.equal(cookie.sameSite, 'Strict')
    assert.equal(cookie.path, '/')
    assert.equal(cookie.hostOnly, true)
    assert.equal(cookie.attributes.domain, undefined)
    assert.deepEqual(loginCookies(browser), [], 'login-state cookie consumed')
    // Nothing readable in the cookie: no JWT, no claim.
    assert.ok(!Buffer.from(cookie.value, 'base64url').toString('latin1').includes('alice'))
  })

  test('the login-state cookie is Lax, HttpOnly, Secure and the authorization request uses PKCE S256, state and nonce', async () => {
    const browser = createBrowser()
    const start = await browser.get(`${stack.url}/bff/login`)
    assert.equal(start.status, 302)
    assert.equal(start.headers.get('cache-control'), 'no-store')
    const authorize = start.location!
    assert.equal(authorize.origin, new URL(stack.idp.issuer).origin)
    assert.equal(authorize.searchParams.get('response_type'), 'code')
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256')
    assert.match(authorize.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/)
    assert.ok((authorize.searchParams.get('state') ?? '').length >= 32)
    assert.ok((authorize.searchParams.get('nonce') ?? '').length >= 32)
    assert.equal(authorize.searchParams.get('redirect_uri'), `${stack.url}/bff/callback`)
    assert.equal(authorize.searchParams.get('scope'), 'openid profile email online_access')
    const [login] = loginCookies(browser)
    assert.ok(login)
    assert.match(login.name, /^__Host-bff-login-[A-Za-z0-9_-]{12}$/)
    assert.equal(login.sameSite, 'Lax')
    assert.equal(login.httpOnly, true)
    assert.equal(login.secure, true)
    assert.equal(login.path, '/')
    // The state, nonce and verifier are sealed, not readable.
    assert.ok(!Buffer.from(login.value, 'base64url').toString('latin1').includes(authorize.searchParams.get('state')!))
  })

  test('open-redirect attempts in returnTo land on / after login', async () => {
    for (const returnTo of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)']) {
      const { result } = await stack.login({ returnTo })
      assert.equal(result.url.href, `${stack.url}/`, `returnTo ${returnTo}`)
    }
  })

  test('every login creates a new session id, and the old session of that browser ends', async () => {
    const { browser } = await stack.login()
    const first = browser.cookie(stack.url, '__Host-Http-bff')!.value
    await stack.login({ browser })
    const second = browser.cookie(stack.url, '__Host-Http-bff')!.value
    assert.notEqual(first, second)
    const stale = createBrowser()
    stale.setCookie(stack.url, `__Host-Http-bff=${first}; Path=/; Secure; HttpOnly`)
    assert.equal((await stale.get(`${stack.url}/bff/user`)).status, 401)
  })

  test('two logins started together in one browser (two tabs) both complete', async () => {
    const browser = createBrowser()
    const until = (url: URL) => url.pathname === '/bff/callback'
    // Both tabs reach the IdP's answer before either callback runs.
    const first = await loginAtDevIdp(browser, `${stack.url}/bff/login?returnTo=/tab-1`, USER, { until })
    const second = await browser.follow(`${stack.url}/bff/login?returnTo=/tab-2`, { until })
    assert.equal(loginCookies(browser).length, 2)
    const one = await browser.get(first.url)
    const two = await browser.get(second.url)
    assert.equal(one.status, 302, one.text)
    assert.equal(two.status, 302, two.text)
    assert.equal(one.location?.pathname, '/tab-1')
    assert.equal(two.location?.pathname, '/tab-2')
    assert.deepEqual(loginCookies(browser), [])
  })

  test('pending login attempts are bounded: the oldest cookies are dropped', async () => {
    const browser = createBrowser()
    for (let i = 0; i < 7; i++) await browser.get(`${stack.url}/bff/login?returnTo=/attempt-${i}`)
    assert.equal(loginCookies(browser).length, 4)
  })

  test('a replayed callback is refused and creates no session', async () => {
    const browser = createBrowser()
    const atCallback = await stack.login({ browser }).catch(() => undefined)
    assert.ok(atCallback)
    // Run a second login but stop before the callback, then replay it twice.
    const second = createBrowser()
    const stopped = await loginAtDevIdp(second, `${stack.url}/bff/login`, USER, {
      until: (url) => url.pathname === '/bff/callback',
    })
    const [loginCookie] = loginCookies(second)
    assert.ok(loginCookie)
    const first = await second.get(stopped.url)
    assert.equal(first.status, 302)
    const replay = createBrowser()
    replay.setCookie(stack.url, loginCookie.setCookie)
    const again = await replay.get(stopped.url)
    assert.equal(again.status, 400)
    assert.equal(again.json<{ error: string }>().error, 'login_state_invalid')
    assert.equal(replay.cookie(stack.url, '__Host-Http-bff'), undefined)
  })

  test("a callback with another browser's state, or without a login cookie, is refused", async () => {
    const victim = createBrowser()
    const stopped = await loginAtDevIdp(victim, `${stack.url}/bff/login`, USER, {
      until: (url) => url.pathname === '/bff/callback',
    })
    const attacker = createBrowser()
    await attacker.get(`${stack.url}/bff/login`) // the attacker's own login cookie, other state
    const foreign = await attacker.get(stopped.url)
    assert.equal(foreign.status, 400)
    assert.equal(foreign.json<{ error: string }>().error, 'login_state_invalid')
    const bare = await createBrowser().get(stopped.url)
    assert.equal(bare.status, 400)
    assert.ok(stack.logs.lines.some((l) => l.event === 'login.state_invalid'))
  })
})

describe('/bff/user', () => {
  test("shows the user's claims and session expiry, and no token", async () => {
    const { browser } = await stack.login()
    const res = await browser.get(`${stack.url}/bff/user`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('cache-control'), 'no-store')
    const body = res.json<{
      claims: Record<string, unknown>
      session: { expiresAt: number; absoluteExpiresAt: number }
      logoutUrl: string
    }>()
    assert.equal(body.claims.sub, 'user-alice')
    assert.equal(body.claims.name, 'Alice Example')
    assert.equal(body.claims.email, 'alice@example.com')
    assert.equal(body.claims.nonce, undefined)
    assert.equal(body.claims.sid, undefined)
    assert.ok(body.session.expiresAt > Date.now() / 1000)
    assert.ok(body.session.absoluteExpiresAt >= body.session.expiresAt)
    assert.match(
      body.logoutUrl,
      /^\/bff\/logout\?sid=[A-Za-z0-9_-]{22}$/,
      'a logout URL bound to the session (issue 13 item 11)',
    )
    assert.ok(!/eyJ|ORT|access_token|refresh_token|id_token/.test(res.text), 'a token leaked to the SPA')
  })

  test('answers 401 login_required without a session, and 401 session_ended with a dead or garbage cookie', async () => {
    const anonymous = await createBrowser().get(`${stack.url}/bff/user`)
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.json<{ error: string }>().error, 'login_required')
    for (const value of ['garbage', 'A'.repeat(71), '%E0%A4%A', `${'x'.repeat(4000)}`]) {
      const browser = createBrowser()
      browser.setCookie(stack.url, `__Host-Http-bff=${value}; Path=/; Secure`)
      const res = await browser.get(`${stack.url}/bff/user`)
      assert.equal(res.status, 401, value)
      assert.equal(res.json<{ error: string }>().error, 'session_ended')
      assert.match(res.setCookies.join('\n'), /__Host-Http-bff=;.*Max-Age=0/i)
    }
  })

  test('a tampered cookie gets 401, never a 5xx', async () => {
    const { browser } = await stack.login()
    const value = browser.cookie(stack.url, '__Host-Http-bff')!.value
    for (const i of [0, 1, 5, 21, 40, 70]) {
      const tampered = value.slice(0, i) + (value[i] === 'A' ? 'B' : 'A') + value.slice(i + 1)
      const other = createBrowser()
      other.setCookie(stack.url, `__Host-Http-bff=${tampered}; Path=/; Secure`)
      const user = await other.get(`${stack.url}/bff/user`)
      assert.equal(user.status, 401, `position ${i}`)
      const api = await other.get(`${stack.url}/api/hello`, CSRF)
      assert.equal(api.status, 401, `position ${i}`)
    }
  })
})

describe('proxy', () => {
  test('a proxied call reaches the API with a valid access token and without the session cookie', async () => {
    const { browser } = await stack.login()
    const res = await browser.get(`${stack.url}/api/hello?x=1`, {
      ...CSRF,
      authorization: 'Bearer forged-by-the-browser',
    })
    assert.equal(res.status, 200)
    const echo = res.json<{
      method: string
      path: string
      claims: Record<string, unknown>
      headers: Record<string, string>
    }>()
    assert.equal(echo.path, '/hello?x=1')
    assert.equal(echo.claims.sub, 'user-alice')
    assert.equal(echo.claims.aud, 'https://api.bffgate.test')
    assert.match(echo.headers.authorization ?? '', /^Bearer eyJ/)
    assert.notEqual(echo.headers.authorization, 'Bearer forged-by-the-browser')
    assert.equal(echo.headers.cookie, undefined, 'the session cookie reached the upstream')
    assert.equal(echo.headers['x-csrf'], undefined)
    assert.equal(echo.headers['x-forwarded-proto'], 'http')
    assert.equal(echo.headers['x-forwarded-host'], new URL(stack.url).host)
  })

  test("a proxied answer carries the request id, the upstream's headers and the security headers it did not set", async () => {
    const { browser } = await stack.login()
    const res = await browser.get(`${stack.url}/api/headers`, { ...CSRF, 'x-request-id': 'trace-42' })
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('x-request-id'), 'trace-42')
    assert.equal(
      res.json<{ headers: Record<string, string> }>().headers['x-request-id'],
      'trace-42',
      'the same id upstream',
    )
    assert.match(res.headers.get('content-type') ?? '', /application\/json/)
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    assert.equal(res.headers.get('x-frame-options'), 'DENY')
    assert.equal(res.headers.get('content-security-policy'), "frame-ancestors 'none'")
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer')
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(res.text)))
  })

  test('a call without the CSRF header gets 403 JSON and never reaches the upstream', async () => {
    const { browser } = await stack.login()
    const callsBefore = stack.api.requests().length
    const res = await browser.get(`${stack.url}/api/hello`)
    assert.equal(res.status, 403)
    assert.deepEqual(Object.keys(res.json<object>()).sort(), ['error', 'message'])
    assert.equal(res.json<{ error: string }>().error, 'csrf_failed')
    const crossSite = await browser.post(`${stack.url}/api/hello`, 'x', { ...CSRF, origin: 'https://evil.example' })
    assert.equal(crossSite.status, 403)
    assert.equal(stack.api.requests().length, callsBefore, 'the upstream was called')
  })

  test('a call without a session gets 401 JSON, not a redirect', async () => {
    const callsBefore = stack.api.requests().length
    const res = await createBrowser().get(`${stack.url}/api/hello`, CSRF)
    assert.equal(res.status, 401)
    assert.equal(res.json<{ error: string }>().error, 'login_required')
    assert.equal(res.headers.get('location'), null)
    assert.equal(stack.api.requests().length, callsBefore)
  })

  test('a 12 MiB request body streams through unchanged', async () => {
    const { browser } = await stack.login()
    const body = randomBytes(12 * 1024 * 1024)
    const res = await browser.request('POST', `${stack.url}/api/upload`, {
      headers: { ...CSRF, 'content-type': 'application/octet-stream' },
      body,
    })
    assert.equal(res.status, 200)
    const echo = res.json<{ body: { bytes: number; sha256: string } }>()
    assert.equal(echo.body.bytes, body.length)
    assert.equal(echo.body.sha256, createHash('sha256').update(body).digest('hex'))
  })

  test('paths cannot leave the route: unknown prefixes are 404, traversal never reaches another path', async () => {
    const { browser } = await stack.login()
    assert.equal((await browser.get(`${stack.url}/apix/hello`, CSRF)).status, 404)
    const cookie = cookieHeader(stack, browser)
    for (const path of [
      '/api/../bff/user',
      '/api/%2e%2e/secret',
      '/api/..%2fsecret',
      '/api/%2e%2e%2f%2e%2e/etc/passwd',
      '/api//evil.example/x',
      '/api/http://evil.example/',
    ]) {
      // Sent raw: fetch() would normalise the dot segments before they reach bffgate.
      const res = await rawRequest(stack.url, path, { ...CSRF, cookie })
      assert.ok(res.status < 500, `${path} → ${res.status}`)
      if (res.status === 200) {
        const echo = JSON.parse(res.body) as { path?: string }
        assert.ok(echo.path !== undefined, `${path} was answered by bffgate itself: ${res.body}`)
        // Answered by the demo API (the only upstream), at a path with no way back up.
        assert.ok(!/\.\.|%2e%2e/i.test(echo.path), `${path} reached ${echo.path}`)
      }
    }
  })
})

function rawRequest(
  base: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, path, method: 'GET', headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('logout', () => {
  test('logout needs the CSRF header', async () => {
    const { browser } = await stack.login()
    const res = await browser.post(`${stack.url}/bff/logout`, '')
    assert.equal(res.status, 403)
    assert.equal((await browser.get(`${stack.url}/bff/user`)).status, 200, 'the session survived')
  })

  test('logout deletes the session from Redis, clears the cookie and returns the IdP end-session URL (without any token: issue 13 item 11)', async () => {
    const { browser } = await stack.login()
    const keysBefore = (await redisDump()).keys.filter((k) => k.startsWith(`${stack.keyPrefix}session:`)).length
    const res = await browser.post(`${stack.url}/bff/logout`, '', CSRF)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('cache-control'), 'no-store')
    const { logoutUrl } = res.json<{ logoutUrl: string }>()
    const url = new URL(logoutUrl)
    assert.equal(url.origin, new URL(stack.idp.issuer).origin)
    assert.equal(url.searchParams.get('client_id'), 'bffgate-test')
    assert.equal(url.searchParams.get('post_logout_redirect_uri'), `${stack.url}/bff/logged-out`)
    // Issue 13 item 11: the answer is read by page JavaScript, so it carries no token at all.
    assert.equal(url.searchParams.get('id_token_hint'), null)
    assert.doesNotMatch(res.text, /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/, 'a JWT in the answer')
    assert.equal(browser.cookie(stack.url, '__Host-Http-bff'), undefined, 'cookie cleared')
    const keysAfter = (await redisDump()).keys.filter((k) => k.startsWith(`${stack.keyPrefix}session:`)).length
    assert.equal(keysAfter, keysBefore - 1)
    assert.equal((await browser.get(`${stack.url}/bff/user`)).status, 401)

    // Following the URL ends the IdP session: the next login shows the login form again.
    const ended = await browser.follow(logoutUrl)
    assert.equal(ended.url.href, `${stack.url}/`)
    const again = await browser.follow(`${stack.url}/bff/login`, {
      until: (u) => u.origin === stack.url && !u.pathname.startsWith('/bff/'),
    })
    assert.equal(again.matched, false, 'SSO still active after RP-initiated logout')
    assert.match(again.response.text, /name="password"/)
  })
})

describe('storage', () => {
  test('no access, refresh or ID token, nor any claim, appears in plain text in Redis', async () => {
    const { browser } = await stack.login()
    const echo = (await browser.get(`${stack.url}/api/hello`, CSRF)).json<{ headers: Record<string, string> }>()
    const accessToken = echo.headers.authorization!.slice('Bearer '.length)
    const { keys, text } = await redisDump()
    assert.ok(keys.length > 0)
    assert.ok(!text.includes(accessToken), 'access token in clear')
    // Whole token shapes, not 3-letter prefixes: random ciphertext contains "eyJ" now and then.
    assert.doesNotMatch(text, JWT_SHAPE, 'a JWT (ID or access token) in clear')
    assert.doesNotMatch(text, /ORT[A-Za-z0-9_-]{20}/, 'an online refresh token in clear')
    assert.ok(!text.includes('alice'), 'a claim in clear')
    assert.ok(!text.includes(browser.cookie(stack.url, '__Host-Http-bff')!.value), 'the cookie value in Redis')
    // The refresh token never left bffgate: not in the cookie, not in any answer.
    assert.ok(!stack.logs.raw.join('\n').includes(accessToken), 'access token in the logs')
  })
})
