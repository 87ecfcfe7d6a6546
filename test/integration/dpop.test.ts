import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, type JWK } from 'jose'
import { createBrowser, loginAtDevIdp } from '../helpers/browser.ts'
import { dumpRedis, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { sessionCookieHeader, startStack, USER, type Stack } from '../helpers/stack.ts'

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

async function call(stack: Stack, cookie: string, path = '/api/hello'): Promise<{ status: number; echo: Echo }> {
  const res = await fetch(`${stack.url}${path}`, { headers: { ...CSRF, cookie } })
  return { status: res.status, echo: (await res.json()) as Echo }
}

async function loginCookie(stack: Stack): Promise<string> {
  const { browser } = await stack.login()
  return sessionCookieHeader(stack, browser)
}

describe('DPoP everywhere (BFF_DPOP=true)', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack({
      redis,
      idp: { accessTokenTtlSeconds: 3 },
      env: { BFF_DPOP: 'true', BFF_REFRESH_SKEW_SECONDS: '1' },
    })
  })
  after(() => stack.close())

  test('the authorization request carries dpop_jkt, and the code is redeemed for a DPoP-bound token', async () => {
    const browser = createBrowser()
    const start = await browser.get(`${stack.url}/bff/login`)
    const jkt = start.location!.searchParams.get('dpop_jkt')
    assert.match(jkt ?? '', /^[A-Za-z0-9_-]{43}$/)
    await loginAtDevIdp(browser, start.location!, USER, {
      until: (u) => u.origin === stack.url && !u.pathname.startsWith('/bff/'),
    })
    const cookie = sessionCookieHeader(stack, browser)
    const { status, echo } = await call(stack, cookie)
    assert.equal(status, 200)
    assert.equal((echo.claims.cnf as { jkt?: string }).jkt, jkt, 'the token is bound to the key of the login')
  })

  test('upstream calls carry Authorization: DPoP and a fresh proof (htm, htu, ath, iat, jti) that the API verifies', async () => {
    const cookie = await loginCookie(stack)
    const first = await call(stack, cookie, '/api/orders/7?expand=1')
    assert.equal(first.status, 200, JSON.stringify(first.echo))
    assert.match(first.echo.headers.authorization ?? '', /^DPoP eyJ/)
    const proof = first.echo.headers.dpop!
    const header = decodeProtectedHeader(proof)
    assert.equal(header.typ, 'dpop+jwt')
    assert.equal(header.alg, 'ES256')
    assert.equal(await calculateJwkThumbprint(header.jwk as JWK), (first.echo.claims.cnf as { jkt: string }).jkt)
    const claims = decodeJwt(proof)
    assert.equal(claims.htm, 'GET')
    assert.equal(claims.htu, `${stack.api.url}/orders/7`)
    assert.equal(typeof claims.ath, 'string')
    assert.equal(typeof claims.jti, 'string')
    assert.equal(JSON.stringify(header.jwk).includes('"d"'), false, 'the private key left bffgate')
    const second = await call(stack, cookie, '/api/orders/7?expand=1')
    assert.notEqual(decodeJwt(second.echo.headers.dpop!).jti, claims.jti, 'a proof was reused')
  })

  test('refreshed tokens stay bound to the same key', async () => {
    const cookie = await loginCookie(stack)
    const first = await call(stack, cookie)
    const jkt = (first.echo.claims.cnf as { jkt: string }).jkt
    await sleep(Math.max(0, (first.echo.claims.exp as number) * 1000 - Date.now()) + 1100)
    stack.idp.resetStats()
    const second = await call(stack, cookie)
    assert.equal(second.status, 200)
    assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
    assert.notEqual(second.echo.headers.authorization, first.echo.headers.authorization)
    assert.equal((second.echo.claims.cnf as { jkt: string }).jkt, jkt)
  })

  test('no token or key material appears in Redis in clear', async () => {
    await loginCookie(stack)
    const text = (await dumpRedis(redis.client(), stack.keyPrefix)).values.map((v) => v.toString('latin1')).join('\n')
    assert.ok(!text.includes('"crv"') && !text.includes('P-256'), 'DPoP key material in clear')
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./, 'a JWT in clear')
  })
})

describe('DPoP on one route', () => {
  test('a dpop route gets its own bound token while other routes keep bearer tokens, and an upstream nonce is honoured', async (t) => {
    const stack = await startStack({
      redis,
      api: { requireDpopNonce: true },
      routes: (api) => [
        { path: '/plain', upstream: api },
        { path: '/bound', upstream: api, dpop: true },
      ],
    })
    t.after(() => stack.close())
    const cookie = await loginCookie(stack)
    // The demo API demands its nonce: the first proof is refused with use_dpop_nonce and replayed once.
    const bound = await call(stack, cookie, '/bound/x')
    assert.equal(bound.status, 200, JSON.stringify(bound.echo))
    assert.match(bound.echo.headers.authorization ?? '', /^DPoP /)
    assert.equal(typeof decodeJwt(bound.echo.headers.dpop!).nonce, 'string')
    assert.ok(stack.logs.lines.some((l) => l.event === 'proxy.replayed' && l.reason === 'use_dpop_nonce'))
    // The nonce is remembered: no second refusal.
    const refusals = stack.api.requests().filter((r) => r.status === 401).length
    assert.equal((await call(stack, cookie, '/bound/y')).status, 200)
    assert.equal(stack.api.requests().filter((r) => r.status === 401).length, refusals)
    const plain = await call(stack, cookie, '/plain/x')
    assert.equal(plain.status, 200)
    assert.match(plain.echo.headers.authorization ?? '', /^Bearer /)
    assert.equal(plain.echo.headers.dpop, undefined)
  })
})

describe('DPoP nonces of the IdP (RFC 9449 §8)', () => {
  test("issue 13 item 12: the IdP's DPoP nonce is reused across calls: after the first, PAR, code and refresh requests cost no refused round trip", async (t) => {
    const stack = await startStack({
      redis,
      idp: { requireDpopNonce: true, accessTokenTtlSeconds: 2 },
      env: { BFF_DPOP: 'true', BFF_OIDC_PAR: 'true', BFF_REFRESH_SKEW_SECONDS: '1' },
    })
    t.after(() => stack.close())
    const counts = () => ({
      par: stack.idp.pushedAuthorizationRequests(),
      code: stack.idp.stats().tokenRequests.authorization_code ?? 0,
      refresh: stack.idp.stats().tokenRequests.refresh_token ?? 0,
    })

    // The very first request learns the nonce (one refusal at most); from then on none.
    const first = await loginCookie(stack)
    assert.equal((await call(stack, first)).status, 200)
    const warm = counts()
    assert.ok(warm.par <= 2 && warm.code <= 2, `first login: ${JSON.stringify(warm)}`)

    // More logins, each with a new key pair (a new DPoP handle): one PAR and one code request each.
    const cookies = [first]
    for (let i = 0; i < 3; i++) cookies.push(await loginCookie(stack))
    const afterLogins = counts()
    assert.equal(afterLogins.par - warm.par, 3, `PAR requests for 3 logins: ${JSON.stringify(afterLogins)}`)
    assert.equal(afterLogins.code - warm.code, 3, `code requests for 3 logins: ${JSON.stringify(afterLogins)}`)

    // Refreshes of four sessions (four keys), twice: one token request each.
    for (let round = 0; round < 2; round++) {
      await sleep(2200)
      for (const cookie of cookies) assert.equal((await call(stack, cookie)).status, 200)
    }
    const end = counts()
    assert.equal(end.refresh - afterLogins.refresh, 8, `refresh requests for 8 refreshes: ${JSON.stringify(end)}`)
  })
})
