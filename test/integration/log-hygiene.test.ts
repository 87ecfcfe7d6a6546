/**
 * No secret reaches the gateway's logs, even at debug level: a session is driven through
 * login, /bff/user, API calls, a transparent refresh, logout with revocation, a back-channel
 * logout and a handful of failures, then every log line is scanned for every token the IdP
 * issued, every cookie value, every authorization code and the client secret.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { DEFAULT_USER } from '../../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp, type Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import {
  BOB,
  CLIENT_SECRET,
  SESSION_SECRET,
  startStack,
  USER,
  type Stack,
  sessionCookieHeader,
} from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }
/** Login-state cookies are named per attempt: this prefix and a hash of the state. */
const LOGIN_COOKIE_PREFIX = '__Host-bff-login-'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

/** Everything secret the test saw pass by, by kind. */
class Secrets {
  readonly codes = new Set<string>()
  readonly loginCookies = new Set<string>()
  readonly sessionCookies = new Set<string>()

  /** Notes the value of every gateway cookie the browser holds. */
  noteCookies(stack: Stack, browser: Browser): void {
    for (const cookie of browser.cookies(stack.url)) {
      if (!cookie.name.startsWith('__Host-')) continue
      if (cookie.name.startsWith(LOGIN_COOKIE_PREFIX)) this.loginCookies.add(cookie.value)
      else this.sessionCookies.add(cookie.value)
    }
  }
}

/** Runs the login up to the callback, noting the login cookie and the code, without finishing it. */
async function loginUntilCallback(stack: Stack, secrets: Secrets, browser: Browser, user = USER): Promise<URL> {
  const stopped = await loginAtDevIdp(browser, `${stack.url}/bff/login`, user, {
    until: (url) => url.pathname === '/bff/callback',
  })
  assert.ok(stopped.matched, `the login ended at ${stopped.url.href}`)
  const code = stopped.url.searchParams.get('code')
  assert.ok(code, 'the callback carries a code')
  secrets.codes.add(code)
  secrets.noteCookies(stack, browser)
  return stopped.url
}

/** A full login through the callback; the browser then holds a session. */
async function login(stack: Stack, secrets: Secrets, user = USER): Promise<Browser> {
  const browser = createBrowser()
  const callback = await loginUntilCallback(stack, secrets, browser, user)
  const landed = await browser.follow(callback, {
    until: (url) => url.origin === stack.url && !url.pathname.startsWith('/bff/'),
  })
  assert.ok(
    landed.matched,
    `the callback ended at ${landed.url.href} (${landed.response.status} ${landed.response.text})`,
  )
  secrets.noteCookies(stack, browser)
  return browser
}

async function api(
  stack: Stack,
  browser: Browser,
  path = '/api/hello',
  headers: Record<string, string> = CSRF,
): Promise<Response> {
  return fetch(`${stack.url}${path}`, { headers: { ...headers, cookie: sessionCookieHeader(stack, browser) } })
}

/** The strings to look for: a value itself and, for long ones, a random-looking part of it (a truncated log would keep one). */
function needlesOf(value: string): string[] {
  const parts = value.split('.')
  if (parts.length === 3 && value.startsWith('eyJ') && parts[2]!.length >= 32) return [value, parts[2]!]
  if (value.length >= 48) {
    const middle = Math.floor(value.length / 2)
    return [value, value.slice(middle - 12, middle + 12)]
  }
  return [value]
}

describe('log hygiene', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack({
      redis,
      backchannel: true,
      idp: { accessTokenTtlSeconds: 2, users: [{ ...DEFAULT_USER }, BOB] },
      env: { BFF_REFRESH_SKEW_SECONDS: '1', BFF_LOGOUT_REVOKE_REFRESH_TOKEN: 'true', BFF_LOG_LEVEL: 'debug' },
    })
  })
  after(() => stack.close())

  test('no token, cookie value, authorization code or client secret appears in any gateway log line at debug level', async (t) => {
    const secrets = new Secrets()

    // Login, /bff/user, API calls.
    const alice = await login(stack, secrets)
    const user = await fetch(`${stack.url}/bff/user`, {
      headers: { ...CSRF, cookie: sessionCookieHeader(stack, alice) },
    })
    assert.equal(user.status, 200)
    const first = await api(stack, alice)
    assert.equal(first.status, 200)
    const firstToken = ((await first.json()) as { headers: { authorization: string } }).headers.authorization.replace(
      /^Bearer /,
      '',
    )
    assert.equal((await api(stack, alice, '/api/orders/7?expand=1')).status, 200)

    // A transparent refresh once the access token expired.
    await sleep(Math.max(0, decodeJwt(firstToken).exp! * 1000 - Date.now()) + 150)
    const refreshesBefore = stack.idp.stats().tokenRequests.refresh_token ?? 0
    assert.equal((await api(stack, alice)).status, 200)
    assert.ok((stack.idp.stats().tokenRequests.refresh_token ?? 0) > refreshesBefore, 'a refresh happened')
    secrets.noteCookies(stack, alice)

    // Logout with refresh-token revocation, followed through the IdP.
    const logout = await alice.post(`${stack.url}/bff/logout`, '', CSRF)
    assert.equal(logout.status, 200, logout.text)
    await alice.follow(logout.json<{ logoutUrl: string }>().logoutUrl, { until: (url) => url.origin === stack.url })
    assert.equal((await api(stack, alice)).status, 401, 'logged out')

    // A back-channel logout: Alice again and Bob; the IdP ends Alice's sessions.
    const aliceAgain = await login(stack, secrets)
    const bob = await login(stack, secrets, BOB)
    assert.equal((await api(stack, aliceAgain)).status, 200)
    assert.equal(await stack.idp.revokeSessions('user-alice'), 1)
    assert.equal((await api(stack, aliceAgain)).status, 401, 'the back-channel logout ended the session')
    assert.equal((await api(stack, bob)).status, 200)

    // Failures: another browser's state, a replayed callback, a tampered code, an IdP error,
    // a missing CSRF header, a forged session cookie.
    const victim = createBrowser()
    const victimCallback = await loginUntilCallback(stack, secrets, victim)
    const attacker = createBrowser()
    await attacker.get(`${stack.url}/bff/login`)
    secrets.noteCookies(stack, attacker)
    assert.equal((await attacker.get(victimCallback)).status, 400, 'wrong state')
    const tampered = new URL(victimCallback)
    tampered.searchParams.set('code', `${tampered.searchParams.get('code')}x`)
    const tamperedAnswer = await victim.get(tampered)
    assert.ok(tamperedAnswer.status >= 400, `a tampered code: ${tamperedAnswer.status}`)
    secrets.codes.add(tampered.searchParams.get('code')!)
    const replayer = createBrowser()
    const replayedCallback = await loginUntilCallback(stack, secrets, replayer)
    const loginCookie = replayer.cookies(stack.url).find((c) => c.name.startsWith(LOGIN_COOKIE_PREFIX))!
    assert.ok(loginCookie, 'the login-state cookie of the attempt')
    assert.equal((await replayer.get(replayedCallback)).status, 302)
    secrets.noteCookies(stack, replayer)
    const replay = createBrowser()
    replay.setCookie(stack.url, loginCookie.setCookie)
    assert.equal((await replay.get(replayedCallback)).status, 400, 'a replayed callback')
    const denied = createBrowser()
    const deniedStart = await denied.get(`${stack.url}/bff/login`)
    secrets.noteCookies(stack, denied)
    const state = deniedStart.location!.searchParams.get('state')!
    assert.ok(
      (
        await denied.get(
          `${stack.url}/bff/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(stack.idp.issuer)}`,
        )
      ).status >= 400,
    )
    assert.equal((await api(stack, bob, '/api/hello', {})).status, 403, 'no CSRF header')
    const forged = sessionCookieHeader(stack, bob).replace(/=([^;]{8})/, '=AAAAAAAA')
    assert.equal((await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie: forged } })).status, 401)

    // The scan.
    const tokens = stack.idp.issuedTokens()
    const secretsByKind: Record<string, string[]> = {
      token: tokens,
      'session cookie': [...secrets.sessionCookies],
      'login-state cookie': [...secrets.loginCookies],
      'authorization code': [...secrets.codes],
      'client secret': [CLIENT_SECRET],
      'session secret': [SESSION_SECRET],
    }
    const lines = stack.logs.raw
    const leaks: string[] = []
    let needles = 0
    for (const [kind, values] of Object.entries(secretsByKind)) {
      for (const value of values) {
        for (const needle of needlesOf(value)) {
          needles += 1
          const line = lines.find((l) => l.includes(needle))
          if (line !== undefined) leaks.push(`${kind} ${needle.slice(0, 12)}... in ${line.slice(0, 300)}`)
        }
      }
    }
    assert.deepEqual(leaks, [], 'secrets in the logs')

    // The scan covered something: many tokens and secrets, many lines, every path above logged.
    assert.ok(tokens.length >= 12, `tokens issued: ${tokens.length}`)
    assert.ok(
      tokens.some((token) => token.startsWith('ORT')),
      'refresh tokens among them',
    )
    assert.ok(secrets.sessionCookies.size >= 4, `session cookies: ${secrets.sessionCookies.size}`)
    assert.ok(secrets.loginCookies.size >= 6, `login cookies: ${secrets.loginCookies.size}`)
    assert.ok(secrets.codes.size >= 6, `codes: ${secrets.codes.size}`)
    assert.ok(needles >= 40, `needles: ${needles}`)
    t.diagnostic(
      `scanned ${lines.length} log lines for ${needles} needles: ${tokens.length} tokens, ${secrets.sessionCookies.size} session cookies, ${secrets.loginCookies.size} login cookies, ${secrets.codes.size} codes`,
    )
    // One access line per request now (fastify wrote two): 27 requests and the events, ~60 lines.
    assert.ok(lines.length >= 45, `log lines: ${lines.length}`)
    assert.ok(
      stack.logs.lines.some((l) => l.level === 20),
      'debug lines were written',
    )
    // No query string (it carries codes and states), and every `code` field is an error code.
    assert.ok(!lines.some((l) => l.includes('expand=1') || l.includes('?code=')), 'a query string was logged')
    const codes = stack.logs.lines.flatMap((l) => JSON.stringify(l).match(/"code":"[^"]*"/g) ?? [])
    assert.ok(codes.length > 0, 'error codes were logged')
    for (const code of codes) assert.match(code, /^"code":"(?:[A-Z][A-Z0-9_]*|\[redacted\])"$/)
    // One access line per request, carrying its route pattern, never its URL.
    const access = stack.logs.lines.filter((l) => l.msg === 'request completed')
    assert.ok(access.length >= 20, `access lines: ${access.length}`)
    assert.ok(
      access.every(
        (l) => typeof l.route === 'string' && l.url === undefined && l.req === undefined && l.res === undefined,
      ),
      'access lines carry the route only',
    )
    const events = new Set(stack.logs.lines.map((l) => l.event))
    for (const event of [
      'login.started',
      'login.succeeded',
      'token.refreshed',
      'logout.refresh_token_revoked',
      'session.ended',
      'login.state_invalid',
      'login.failed',
      'csrf.rejected',
    ]) {
      assert.ok(events.has(event), `the logs show ${event}`)
    }
  })
})
