/**
 * bffgate authenticates to the IdP as configured (client_secret_post, client_secret_basic,
 * private_key_jwt), pushes its authorization requests when BFF_OIDC_PAR is on, and copes with
 * an IdP that demands DPoP nonces at the token endpoint. Real Redis, the dev IdP, the demo API.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt, exportJWK, generateKeyPair, type JWK } from 'jose'
import type { DevIdpClient } from '../../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp, type Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { CLIENT_SECRET, startStack, USER, type Stack, type StackOptions, cookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }
const TTL = 3
const SKEW = 1

interface Echo {
  claims: Record<string, unknown>
  headers: Record<string, string>
}

let redis: TestRedis
let signer: { privateJwk: JWK; publicJwk: JWK }

before(async () => {
  redis = await startTestRedis()
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const kid = 'bffgate-signer-1'
  signer = {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'ES256' },
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' },
  }
})
after(() => redis.stop())

type Method = 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt'

/** What bffgate needs in its environment to authenticate with `method`. */
function gatewayAuthEnv(clientId: string, method: Method): Record<string, string> {
  return {
    BFF_OIDC_CLIENT_ID: clientId,
    BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD: method,
    ...(method === 'private_key_jwt'
      ? { BFF_OIDC_CLIENT_SECRET: '', BFF_OIDC_CLIENT_PRIVATE_KEY: JSON.stringify(signer.privateJwk) }
      : { BFF_OIDC_CLIENT_SECRET: CLIENT_SECRET }),
  }
}

/**
 * A stack whose gateway is client `clientId` authenticating with `gateway`, registered at the
 * IdP (once the gateway's URL is known) for exactly `registered`.
 */
async function stackFor(
  t: TestContext,
  clientId: string,
  gateway: Method,
  registered: Method = gateway,
  options: StackOptions = {},
): Promise<Stack> {
  const stack = await startStack({
    redis,
    ...options,
    idp: { accessTokenTtlSeconds: TTL, ...options.idp },
    env: { BFF_REFRESH_SKEW_SECONDS: String(SKEW), ...gatewayAuthEnv(clientId, gateway), ...options.env },
  })
  t.after(() => stack.close())
  const client: DevIdpClient = {
    client_id: clientId,
    redirect_uris: [`${stack.url}/bff/callback`],
    post_logout_redirect_uris: [`${stack.url}/`, `${stack.url}/bff/logged-out`],
    token_endpoint_auth_method: registered,
    ...(registered === 'private_key_jwt' ? { jwks: { keys: [signer.publicJwk] } } : { client_secret: CLIENT_SECRET }),
  }
  await stack.idp.registerClient(client)
  return stack
}

/** The gateway's cookies other than the login state (IdP cookies share the host, not the prefix). */
function sessionCookieNames(stack: Stack, browser: Browser): string[] {
  return browser
    .cookies(stack.url)
    .filter((c) => c.name.startsWith('__Host-') && !c.name.startsWith('__Host-bff-login-'))
    .map((c) => c.name)
}

async function callApi(stack: Stack, cookie: string): Promise<{ status: number; echo: Echo }> {
  const res = await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie } })
  return { status: res.status, echo: (await res.json()) as Echo }
}

const tokenOf = (echo: Echo) => echo.headers.authorization!.replace(/^(Bearer|DPoP) /, '')

/**
 * Logs in, reads /bff/user, calls the API, waits until the access token is inside the refresh
 * skew and calls again: the second call must carry a token from a refresh grant.
 */
async function loginProxyAndRefresh(stack: Stack, clientId: string): Promise<{ first: string; second: string }> {
  const { browser, result } = await stack.login()
  assert.equal(result.url.origin, stack.url, `the login ended at ${result.url.href}`)
  const cookie = cookieHeader(stack, browser)
  const user = await fetch(`${stack.url}/bff/user`, { headers: { ...CSRF, cookie } })
  assert.equal(user.status, 200)
  assert.equal(((await user.json()) as { claims: { sub?: string } }).claims.sub, USER_SUB)

  const first = await callApi(stack, cookie)
  assert.equal(first.status, 200, JSON.stringify(first.echo))
  const firstToken = tokenOf(first.echo)
  assert.equal(first.echo.claims.client_id, clientId, 'the token was issued to the client under test')

  // Past the token's exp: bffgate dates expiry from when it received the token (up to a second
  // after the IdP's iat), so waiting only for exp - skew could be too early by that second.
  const { exp } = decodeJwt(firstToken)
  await sleep(Math.max(0, exp! * 1000 - Date.now()) + 150)
  const refreshesBefore = stack.idp.stats().tokenRequests.refresh_token ?? 0
  const second = await callApi(stack, cookie)
  assert.equal(second.status, 200, JSON.stringify(second.echo))
  const secondToken = tokenOf(second.echo)
  assert.notEqual(secondToken, firstToken, 'the expiring token was replaced')
  assert.equal(second.echo.claims.sub, USER_SUB, 'the API verified the refreshed token')
  assert.ok((stack.idp.stats().tokenRequests.refresh_token ?? 0) > refreshesBefore, 'a refresh grant reached the IdP')
  return { first: firstToken, second: secondToken }
}

const USER_SUB = 'user-alice'

describe('client authentication at the token endpoint', { concurrency: true }, () => {
  for (const method of ['client_secret_post', 'client_secret_basic', 'private_key_jwt'] as const) {
    test(`a gateway using ${method} logs in, proxies an API call and refreshes against an IdP that enforces ${method}`, async (t) => {
      const clientId = `bffgate-${method.replaceAll('_', '-')}`
      const stack = await stackFor(t, clientId, method)
      await loginProxyAndRefresh(stack, clientId)
    })
  }

  const mismatches: Array<[Method, Method]> = [
    ['client_secret_post', 'client_secret_basic'],
    ['client_secret_basic', 'client_secret_post'],
    ['client_secret_post', 'private_key_jwt'],
    ['private_key_jwt', 'client_secret_basic'],
  ]
  for (const [gateway, registered] of mismatches) {
    test(`a gateway using ${gateway} for a client registered for ${registered} fails the login with an error answer and no session`, async (t) => {
      const clientId = `bffgate-wrong-${gateway}-${registered}`.replaceAll('_', '-')
      const stack = await stackFor(t, clientId, gateway, registered)
      const browser = createBrowser()
      const stopped = await loginAtDevIdp(browser, `${stack.url}/bff/login`, USER, {
        until: (url) => url.pathname === '/bff/callback',
      })
      assert.ok(stopped.matched, 'the IdP sent the browser back with a code')
      const callback = await browser.get(stopped.url)
      // The IdP refused the client (invalid_client): a refused login, not a broken IdP.
      assert.equal(callback.status, 400, callback.text)
      assert.equal(callback.json<{ error: string }>().error, 'login_failed')
      assert.deepEqual(sessionCookieNames(stack, browser), [], 'no session cookie')
      const failed = stack.logs.lines.find((l) => l.event === 'login.failed')
      assert.ok(failed, 'a login.failed event was logged')
      assert.equal(failed.oauthError, 'invalid_client')
      assert.equal(
        (await fetch(`${stack.url}/bff/user`, { headers: { ...CSRF, cookie: cookieHeader(stack, browser) } })).status,
        401,
      )
      assert.deepEqual(await redis.client().keys(`${stack.keyPrefix}session:*`), [], 'no session in Redis')
    })
  }
})

describe('pushed authorization requests (BFF_OIDC_PAR=true)', { concurrency: true }, () => {
  for (const requirePar of [false, true]) {
    test(`the browser's authorization URL carries only client_id and request_uri and the login works${requirePar ? ' with an IdP that requires PAR' : ''}`, async (t) => {
      const stack = await stackFor(t, `bffgate-par-${requirePar}`, 'client_secret_basic', 'client_secret_basic', {
        env: { BFF_OIDC_PAR: 'true' },
        idp: { requirePushedAuthorizationRequests: requirePar },
      })
      const browser = createBrowser()
      const start = await browser.get(`${stack.url}/bff/login`)
      assert.equal(start.status, 302)
      const authorize = start.location!
      assert.equal(`${authorize.origin}${authorize.pathname}`, `${stack.idp.issuer}/auth`)
      assert.deepEqual([...authorize.searchParams.keys()].sort(), ['client_id', 'request_uri'])
      assert.equal(authorize.searchParams.get('client_id'), `bffgate-par-${requirePar}`)
      assert.match(authorize.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/)
      const landed = await loginAtDevIdp(browser, authorize, USER, {
        until: (url) => url.origin === stack.url && !url.pathname.startsWith('/bff/'),
      })
      assert.ok(landed.matched, `the login ended at ${landed.url.href}`)
      const { status, echo } = await callApi(stack, cookieHeader(stack, browser))
      assert.equal(status, 200)
      assert.equal(echo.claims.sub, USER_SUB)
    })
  }

  test('a gateway without PAR cannot log in at an IdP that requires PAR, and gets no session', async (t) => {
    const stack = await stackFor(t, 'bffgate-no-par', 'client_secret_post', 'client_secret_post', {
      idp: { requirePushedAuthorizationRequests: true },
    })
    const browser = createBrowser()
    const result = await browser.follow(`${stack.url}/bff/login`, { until: (url) => url.pathname === '/bff/callback' })
    assert.ok(result.matched, `the IdP answered ${result.response.status} at ${result.url.href}`)
    assert.equal(result.url.searchParams.get('error'), 'invalid_request', 'the IdP sends the error back to the gateway')
    assert.equal(result.url.searchParams.get('code'), null)
    const callback = await browser.get(result.url)
    assert.equal(callback.status, 400, callback.text)
    assert.equal(callback.json<{ error: string }>().error, 'login_failed')
    assert.deepEqual(sessionCookieNames(stack, browser), [], 'no session cookie')
  })
})

describe('DPoP nonces at the token endpoint (BFF_DPOP=true)', () => {
  test('login and refresh work against an IdP that demands DPoP nonces: only the first token request goes without a nonce', async (t) => {
    const stack = await stackFor(t, 'bffgate-dpop-nonce', 'client_secret_post', 'client_secret_post', {
      env: { BFF_DPOP: 'true' },
      idp: { requireDpopNonce: true },
    })
    stack.idp.resetStats()
    const { first, second } = await loginProxyAndRefresh(stack, 'bffgate-dpop-nonce')
    const { tokenRequests } = stack.idp.stats()
    assert.equal(
      tokenRequests.authorization_code,
      2,
      'one code exchange: refused for want of a nonce, then retried with it',
    )
    // The nonce the code exchange got is reused by the refresh (issue 13 item 12), though its DPoP handle is new.
    assert.equal(tokenRequests.refresh_token, 1, 'one refresh, with the nonce already known')
    const jkt = (decodeJwt(first).cnf as { jkt?: string } | undefined)?.jkt
    assert.match(jkt ?? '', /^[A-Za-z0-9_-]{43}$/, 'the login token is DPoP-bound')
    assert.equal(
      (decodeJwt(second).cnf as { jkt?: string } | undefined)?.jkt,
      jkt,
      'the refreshed token is bound to the same key',
    )
  })
})
