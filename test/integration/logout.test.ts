import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { decodeJwt, type JWK } from 'jose'
import { DEFAULT_USER, generateSigningKeys } from '../../dev/idp/index.ts'
import { createBrowser, type Browser } from '../helpers/browser.ts'
import { logoutTokenClaims, signLogoutToken as signWith } from '../helpers/logout-token.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica } from '../helpers/replica.ts'
import { BOB, CLIENT_ID, startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }

let redis: TestRedis
let keys: JWK[]
let stack: Stack

before(async () => {
  redis = await startTestRedis()
  keys = await generateSigningKeys()
  stack = await startStack({ redis, backchannel: true, idp: { keys, users: [{ ...DEFAULT_USER }, BOB] } })
})
after(async () => {
  await stack?.close()
  await redis?.stop()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)
const userStatus = async (base: string, cookie: string) =>
  (await fetch(`${base}/bff/user`, { headers: { cookie } })).status
const sessionCount = async () => (await redis.client().keys(`${stack.keyPrefix}session:*`)).length

/** A second browser holding the first one's IdP session cookie: its login is SSO, one IdP session for two bffgate sessions. */
function sharingIdpSession(browser: Browser): Browser {
  const other = createBrowser()
  for (const cookie of browser.allCookies())
    if (!cookie.name.startsWith('__Host-')) other.setCookie(stack.idp.issuer, cookie.setCookie)
  return other
}

/** Signed with the IdP's first key unless another is given. */
const signLogoutToken = (claims: Record<string, unknown>, options: { key?: JWK; alg?: string } = {}) =>
  signWith(options.key ?? keys[0]!, claims, options.alg)

const validClaims = (overrides: Record<string, unknown> = {}) =>
  logoutTokenClaims(stack.idp.issuer, CLIENT_ID, { sub: 'user-alice', ...overrides })

async function postLogoutToken(
  body: string,
  contentType = 'application/x-www-form-urlencoded',
): Promise<{ status: number; body: { error?: string; message?: string } | null; headers: Headers }> {
  const res = await fetch(`${stack.url}/bff/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  })
  const text = await res.text()
  return {
    status: res.status,
    body: text === '' ? null : (JSON.parse(text) as { error?: string }),
    headers: res.headers,
  }
}

describe('back-channel logout', () => {
  test('a revocation at the IdP ends the session on another replica within a second', async (t) => {
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(async () => {
      await replica.stop()
    })
    const alice = cookieOf((await stack.login()).browser)
    const bob = cookieOf((await stack.login({ user: BOB })).browser)
    // A valid access token, on the other replica: nothing but the logout can end it.
    assert.equal((await fetch(`${replica.url}/api/x`, { headers: { ...CSRF, cookie: alice } })).status, 200)
    const started = performance.now()
    assert.equal(await stack.idp.revokeSessions('user-alice'), 1)
    const res = await fetch(`${replica.url}/api/x`, { headers: { ...CSRF, cookie: alice } })
    const elapsed = performance.now() - started
    assert.equal(res.status, 401)
    assert.equal(((await res.json()) as { error: string }).error, 'session_ended')
    assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`)
    assert.equal(
      (await fetch(`${replica.url}/api/x`, { headers: { ...CSRF, cookie: bob } })).status,
      200,
      'another user was logged out',
    )
  })

  test('one back-channel logout ends both bffgate sessions of one IdP session and no other', async () => {
    const first = await stack.login()
    const second = await stack.login({ browser: sharingIdpSession(first.browser) })
    const bob = cookieOf((await stack.login({ user: BOB })).browser)
    const [a, b] = [cookieOf(first.browser), cookieOf(second.browser)]
    assert.notEqual(a, b)
    assert.equal(await userStatus(stack.url, a), 200)
    assert.equal(await userStatus(stack.url, b), 200)
    const counter = async (pattern: RegExp) =>
      Number(pattern.exec(await (await fetch(`${stack.adminUrl}/metrics`)).text())?.[1] ?? 0)
    const ended = /bff_sessions_ended_total\{cause="backchannel"\} (\d+)/
    const accepted = /bff_backchannel_logouts_total\{outcome="accepted"\} (\d+)/
    const [endedBefore, acceptedBefore] = [await counter(ended), await counter(accepted)]
    await stack.idp.revokeSessions('user-alice')
    assert.equal(await userStatus(stack.url, a), 401)
    assert.equal(await userStatus(stack.url, b), 401)
    assert.equal(await userStatus(stack.url, bob), 200)
    assert.equal((await counter(accepted)) - acceptedBefore, 1, 'one logout token')
    assert.equal((await counter(ended)) - endedBefore, 2, 'two sessions ended by it')
  })

  test("the logout token's key fetch is timed as the IdP's jwks endpoint", async (t) => {
    // A fresh process: it has fetched nothing from the IdP but the discovery document.
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(() => replica.stop())
    const jwks = async () =>
      Number(
        /^bff_idp_request_duration_seconds_count\{endpoint="jwks",outcome="success"\} (\d+)$/m.exec(
          await (await fetch(`${replica.adminUrl}/metrics`)).text(),
        )?.[1] ?? 0,
      )
    assert.equal(await jwks(), 0)
    const res = await fetch(`${replica.url}/bff/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ logout_token: await signLogoutToken(validClaims({ sub: 'nobody' })) }).toString(),
    })
    assert.equal(res.status, 200)
    assert.equal(await jwks(), 1)
  })

  test('a valid token with only sub ends every session of that user; the answer is 200 no-store', async () => {
    const one = cookieOf((await stack.login()).browser)
    const two = cookieOf((await stack.login()).browser)
    const res = await postLogoutToken(
      new URLSearchParams({ logout_token: await signLogoutToken(validClaims()) }).toString(),
    )
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('cache-control'), 'no-store')
    assert.equal(await userStatus(stack.url, one), 401)
    assert.equal(await userStatus(stack.url, two), 401)
  })

  test('every invalid request is refused with 400 JSON and deletes nothing', async () => {
    const alice = cookieOf((await stack.login()).browser)
    const sessionsBefore = await sessionCount()
    const now = Math.floor(Date.now() / 1000)
    const stranger = (await generateSigningKeys())[0]!
    const valid = await signLogoutToken(validClaims())
    const [header, payload] = valid.split('.')
    const tamperedPayload = Buffer.from(JSON.stringify({ ...validClaims(), sub: 'user-bob' })).toString('base64url')
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'logout+jwt' })).toString('base64url')}.${payload}.`
    const form = (token: string) => new URLSearchParams({ logout_token: token }).toString()

    const cases: Array<[string, string, string?]> = [
      ['bad signature', form(`${header}.${tamperedPayload}.${valid.split('.')[2]}`)],
      ['alg none', form(unsigned)],
      [
        'a key not in the JWKS',
        form(await signLogoutToken(validClaims(), { key: { ...stranger, kid: keys[0]!.kid } })),
      ],
      ['a key with an unknown kid', form(await signLogoutToken(validClaims(), { key: stranger }))],
      ['wrong issuer', form(await signLogoutToken(validClaims({ iss: 'https://evil.example' })))],
      ['wrong audience', form(await signLogoutToken(validClaims({ aud: 'another-client' })))],
      ['expired', form(await signLogoutToken(validClaims({ iat: now - 900, exp: now - 600 })))],
      ['iat in the future', form(await signLogoutToken(validClaims({ iat: now + 3600, exp: now + 3700 })))],
      ['missing events', form(await signLogoutToken(validClaims({ events: undefined })))],
      [
        'wrong event URI',
        form(await signLogoutToken(validClaims({ events: { 'http://schemas.openid.net/event/other': {} } }))),
      ],
      ['nonce present', form(await signLogoutToken(validClaims({ nonce: 'n' })))],
      ['neither sid nor sub', form(await signLogoutToken(validClaims({ sub: undefined })))],
      ['missing jti', form(await signLogoutToken(validClaims({ jti: undefined })))],
      ['not a JWT', form('not-a-jwt')],
      ['empty body', ''],
      ['no logout_token field', 'something=else'],
      ['oversized body', form(`${valid}${'A'.repeat(20_000)}`)],
      ['wrong content type', JSON.stringify({ logout_token: valid }), 'application/json'],
      ['text content type', form(valid), 'text/plain'],
    ]
    for (const [name, body, type] of cases) {
      const res = await postLogoutToken(body, type)
      assert.equal(res.status, 400, `${name}: ${res.status} ${JSON.stringify(res.body)}`)
      assert.equal(res.body?.error, 'invalid_request', name)
      assert.equal(typeof res.body?.message, 'string', name)
      assert.equal(await userStatus(stack.url, alice), 200, `${name} deleted the session`)
    }
    assert.equal(await sessionCount(), sessionsBefore)
    assert.ok(stack.logs.lines.filter((l) => l.event === 'backchannel_logout.rejected').length >= cases.length)
  })

  test('a replayed logout token is refused', async () => {
    const token = await signLogoutToken(validClaims({ sub: undefined, sid: 'an-idp-session-with-no-bffgate-session' }))
    assert.equal((await postLogoutToken(new URLSearchParams({ logout_token: token }).toString())).status, 200)
    const replay = await postLogoutToken(new URLSearchParams({ logout_token: token }).toString())
    assert.equal(replay.status, 400)
    assert.match(replay.body?.message ?? '', /jti already used/)
  })
})

describe('RP-initiated logout', () => {
  test('logout ends every bffgate session sharing the IdP session, and lands on /bff/logged-out', async () => {
    const first = await stack.login()
    const second = await stack.login({ browser: sharingIdpSession(first.browser) })
    const b = cookieOf(second.browser)
    const res = await first.browser.post(`${stack.url}/bff/logout`, '', CSRF)
    assert.equal(res.status, 200)
    assert.equal(await userStatus(stack.url, b), 401, 'the session sharing the IdP session survived')
    const { logoutUrl } = res.json<{ logoutUrl: string }>()
    assert.equal(new URL(logoutUrl).searchParams.get('post_logout_redirect_uri'), `${stack.url}/bff/logged-out`)
    const landing = await first.browser.follow(logoutUrl, { until: (url) => url.pathname === '/' })
    assert.ok(landing.redirects.some((u) => u.href === `${stack.url}/bff/logged-out`))
    assert.equal(landing.url.href, `${stack.url}/`)
  })

  test('with BFF_LOGOUT_REVOKE_REFRESH_TOKEN the IdP session ends even if the browser never follows the end-session URL', async (t) => {
    const revoking = await startStack({ redis, env: { BFF_LOGOUT_REVOKE_REFRESH_TOKEN: 'true' } })
    t.after(() => revoking.close())
    const { browser } = await revoking.login()
    const res = await browser.post(`${revoking.url}/bff/logout`, '', CSRF)
    assert.equal(res.status, 200)
    assert.ok(revoking.logs.lines.some((l) => l.event === 'logout.refresh_token_revoked'))
    // Back to the IdP without following the end-session URL: no SSO any more, the form shows.
    const again = await browser.follow(`${revoking.url}/bff/login`, {
      until: (u) => u.origin === revoking.url && !u.pathname.startsWith('/bff/'),
    })
    assert.equal(again.matched, false, 'the IdP session survived the revocation')
    assert.match(again.response.text, /name="password"/)
  })
})

describe('logout without any token in the browser (issue 13 item 11)', () => {
  const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/

  test('issue 13 item 11: the SPA navigates to its session-bound GET /bff/logout; bffgate ends the session and redirects to the IdP with id_token_hint, which never reaches page JavaScript', async () => {
    const first = await stack.login()
    const sharing = cookieOf((await stack.login({ browser: sharingIdpSession(first.browser) })).browser)
    const user = await first.browser.get(`${stack.url}/bff/user`)
    assert.equal(user.status, 200)
    assert.doesNotMatch(user.text, JWT, 'a token in /bff/user')
    const { logoutUrl } = user.json<{ logoutUrl: string }>()
    assert.match(logoutUrl, /^\/bff\/logout\?sid=/)

    const res = await first.browser.get(new URL(logoutUrl, stack.url))
    assert.equal(res.status, 302)
    const idp = res.location!
    assert.equal(`${idp.origin}${idp.pathname}`, `${stack.idp.issuer}/session/end`)
    assert.equal(
      decodeJwt(idp.searchParams.get('id_token_hint')!).sub,
      'user-alice',
      'the hint goes to the IdP in the redirect, not to JavaScript',
    )
    assert.equal(idp.searchParams.get('post_logout_redirect_uri'), `${stack.url}/bff/logged-out`)
    assert.doesNotMatch(res.text, JWT, 'a token in the body')
    assert.equal(first.browser.cookie(stack.url, '__Host-Http-bff'), undefined, 'cookie cleared')
    assert.equal(await userStatus(stack.url, cookieOf(first.browser)), 401)
    assert.equal(await userStatus(stack.url, sharing), 401, 'the session sharing the IdP session survived')

    // Through the IdP back to the app; the IdP session is over, so the next login asks again.
    const landing = await first.browser.follow(res)
    assert.equal(landing.url.href, `${stack.url}/`)
    const again = await first.browser.follow(`${stack.url}/bff/login`, {
      until: (u) => u.origin === stack.url && !u.pathname.startsWith('/bff/'),
    })
    assert.equal(again.matched, false, 'SSO still active after the logout')
    assert.match(again.response.text, /name="password"/)
  })

  test("issue 13 item 11: a logout link that is not the session's own is refused and ends nothing; a cross-site navigation ends nothing", async () => {
    const alice = (await stack.login()).browser
    const bob = (await stack.login({ user: BOB })).browser
    const own = new URL(
      (await alice.get(`${stack.url}/bff/user`)).json<{ logoutUrl: string }>().logoutUrl,
      stack.url,
    ).searchParams.get('sid')!
    const bobs = new URL(
      (await bob.get(`${stack.url}/bff/user`)).json<{ logoutUrl: string }>().logoutUrl,
      stack.url,
    ).searchParams.get('sid')!
    const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`
    const forged = [
      '',
      'sid=',
      `sid=${bobs}`,
      `sid=${flip(own)}`,
      `sid=${own.toLowerCase() === own ? own.toUpperCase() : own.toLowerCase()}`,
      `sid=${own}x`,
      `sid=${own.slice(1)}`,
      `sid=${own}&sid=${own}`,
      `sid[]=${own}`,
      `SID=${own}`,
      `sid=%20${own}`,
    ]
    for (const query of forged) {
      const res = await alice.get(`${stack.url}/bff/logout${query === '' ? '' : `?${query}`}`)
      assert.equal(res.status, 403, `${query}: ${res.status}`)
      assert.equal(res.json<{ error: string }>().error, 'csrf_failed', query)
      assert.deepEqual(res.setCookies, [], `${query} touched a cookie`)
      assert.equal((await alice.get(`${stack.url}/bff/user`)).status, 200, `${query} ended the session`)
    }
    // A cross-site page navigating to the right URL: the Strict cookie is not sent, so nothing is
    // known, nothing is ended and no cookie is touched.
    const crossSite = await fetch(`${stack.url}/bff/logout?sid=${own}`, {
      redirect: 'manual',
      headers: { 'sec-fetch-site': 'cross-site' },
    })
    assert.equal(crossSite.status, 302)
    assert.equal(crossSite.headers.get('location'), '/')
    assert.deepEqual(crossSite.headers.getSetCookie(), [])
    assert.equal((await alice.get(`${stack.url}/bff/user`)).status, 200)
    assert.equal((await bob.get(`${stack.url}/bff/user`)).status, 200)
  })
})
