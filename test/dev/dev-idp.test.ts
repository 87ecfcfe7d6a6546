/**
 * The development IdP behaves like Auth0 with Online Refresh Tokens. Every behaviour is driven
 * over real HTTP with openid-client as the relying party and the test browser as the user.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import * as oidc from 'openid-client'
import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
} from 'jose'
import type { JWTPayload } from 'jose'
import { startDevIdp } from '../../dev/idp/index.ts'
import type { DevIdp, DevIdpClient, DevIdpOptions } from '../../dev/idp/index.ts'
import { createBrowser, findForm, loginAtDevIdp } from '../helpers/browser.ts'
import type { Browser, Credentials } from '../helpers/browser.ts'

const SECRET = 'dev-idp-test-secret'
/** Never requested: the test browser stops before it. */
const REDIRECT_URI = 'http://127.0.0.1:9/callback'
const POST_LOGOUT_URI = 'http://127.0.0.1:9/signed-out'
const API = 'https://api.bffgate.test'
const ALICE: Credentials = { username: 'alice', password: 'alice-password' }
const BOB: Credentials = { username: 'bob', password: 'bob-password' }
/** Users of their own for the tests that revoke sessions, as the main IdP is shared. */
const CAROL: Credentials = { username: 'carol', password: 'carol-password' }
const DAVE: Credentials = { username: 'dave', password: 'dave-password' }
const USERS = [
  {
    username: 'alice',
    password: 'alice-password',
    sub: 'user-alice',
    name: 'Alice Example',
    email: 'alice@example.com',
  },
  ...['bob', 'carol', 'dave'].map((name) => ({ username: name, password: `${name}-password`, sub: `user-${name}` })),
]

const toRedirectUri = (url: URL) => url.href.startsWith(REDIRECT_URI)
const isInvalidGrant = (error: unknown) => error instanceof oidc.ResponseBodyError && error.error === 'invalid_grant'

/** A node http server that records back-channel logout tokens. */
interface LogoutReceiver {
  url: string
  tokens: string[]
  close(): Promise<void>
}

async function startLogoutReceiver(): Promise<LogoutReceiver> {
  const tokens: string[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
    })
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token')
      if (
        req.method === 'POST' &&
        req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') &&
        token
      ) {
        tokens.push(token)
        res.writeHead(200).end()
      } else {
        res.writeHead(400).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    tokens,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function clientsFor(receiver?: LogoutReceiver): DevIdpClient[] {
  return [
    {
      client_id: 'web',
      client_secret: SECRET,
      redirect_uris: [REDIRECT_URI],
      post_logout_redirect_uris: [POST_LOGOUT_URI],
      ...(receiver ? { backchannel_logout_uri: receiver.url } : {}),
    },
    // A client without back-channel logout: Auth0 still puts sid in its ID tokens.
    { client_id: 'plain', client_secret: SECRET, redirect_uris: [REDIRECT_URI] },
  ]
}

const configs = new Map<string, Promise<oidc.Configuration>>()
function clientConfig(idp: DevIdp, clientId = 'web'): Promise<oidc.Configuration> {
  const key = `${idp.issuer} ${clientId}`
  let config = configs.get(key)
  if (!config) {
    config = oidc.discovery(new URL(idp.issuer), clientId, undefined, oidc.ClientSecretBasic(SECRET), {
      execute: [oidc.allowInsecureRequests],
    })
    configs.set(key, config)
  }
  return config
}

interface SignInOptions {
  clientId?: string
  /** A discovered client to use instead of the `clientId` one (other client authentication). */
  config?: oidc.Configuration
  /** Push the authorization request (PAR) and send the browser only client_id and request_uri. */
  par?: boolean
  scope?: string
  params?: Record<string, string>
  user?: Credentials
  browser?: Browser
  dpop?: oidc.DPoPHandle
}

interface SignedIn {
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers
  browser: Browser
  config: oidc.Configuration
}

/** Authorization code flow with PKCE: browser login at the IdP, then the code exchange. */
async function signIn(idp: DevIdp, options: SignInOptions = {}): Promise<SignedIn> {
  const config = options.config ?? (await clientConfig(idp, options.clientId))
  const browser = options.browser ?? createBrowser()
  const verifier = oidc.randomPKCECodeVerifier()
  const state = oidc.randomState()
  const parameters = {
    redirect_uri: REDIRECT_URI,
    scope: options.scope ?? 'openid profile email online_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...options.params,
  }
  const url = options.par
    ? await oidc.buildAuthorizationUrlWithPAR(config, parameters)
    : oidc.buildAuthorizationUrl(config, parameters)
  const landed = await loginAtDevIdp(browser, url, options.user ?? ALICE, { until: toRedirectUri })
  assert.ok(landed.matched, `expected a redirect to the client, ended at ${landed.url.href}`)
  const tokens = await oidc.authorizationCodeGrant(
    config,
    landed.url,
    { pkceCodeVerifier: verifier, expectedState: state },
    undefined,
    options.dpop ? { DPoP: options.dpop } : undefined,
  )
  return { tokens, browser, config }
}

function refreshTokenOf(signedIn: SignedIn): string {
  const token = signedIn.tokens.refresh_token
  assert.ok(token, 'expected a refresh token')
  return token
}

/** Starts an IdP of its own for one test, closed when the test ends. */
async function idpForTest(t: TestContext, options: Partial<DevIdpOptions> = {}): Promise<DevIdp> {
  const idp = await startDevIdp({ clients: clientsFor(), users: USERS, ...options })
  t.after(() => idp.close())
  return idp
}

describe('dev IdP (Auth0 with online refresh tokens)', () => {
  let receiver: LogoutReceiver
  let idp: DevIdp

  before(async () => {
    receiver = await startLogoutReceiver()
    idp = await startDevIdp({ clients: clientsFor(receiver), users: USERS, accessTokenTtlSeconds: 120 })
  })
  after(async () => {
    await idp.close()
    await receiver.close()
  })

  test('issuer is the loopback URL without a trailing slash and discovery advertises it', async () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`)
    const config = await clientConfig(idp)
    assert.equal(config.serverMetadata().issuer, idp.issuer)
    assert.ok(config.serverMetadata().scopes_supported?.includes('online_access'))
  })

  describe('online refresh tokens', () => {
    test('an online_access login yields an ORT-prefixed refresh token that is never rotated and keeps working', async () => {
      const signedIn = await signIn(idp)
      const ort = refreshTokenOf(signedIn)
      assert.match(ort, /^ORT/)

      const first = await oidc.refreshTokenGrant(signedIn.config, ort)
      assert.equal('refresh_token' in first, false, 'Auth0 omits refresh_token for ORT exchanges')
      assert.ok(first.access_token && first.access_token !== signedIn.tokens.access_token)
      assert.ok(first.id_token, 'a new ID token for openid')

      const second = await oidc.refreshTokenGrant(signedIn.config, ort)
      assert.equal('refresh_token' in second, false)
      assert.notEqual(second.access_token, first.access_token)
      assert.equal(second.claims()?.sub, 'user-alice')
    })

    test('revoking an ORT at the revocation endpoint ends the whole IdP session (no SSO afterwards)', async () => {
      const signedIn = await signIn(idp)
      await oidc.tokenRevocation(signedIn.config, refreshTokenOf(signedIn))
      await assert.rejects(oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn)), isInvalidGrant)

      const url = oidc.buildAuthorizationUrl(signedIn.config, { redirect_uri: REDIRECT_URI, scope: 'openid' })
      const again = await signedIn.browser.follow(url, { until: toRedirectUri })
      assert.equal(again.matched, false, 'the browser must not be signed in any more')
      assert.ok(findForm(again.response, 'username'), 'the login form is shown again')
    })
  })

  describe('offline refresh tokens', () => {
    test('offline_access without prompt=consent yields rotating refresh tokens; a used one is rejected', async () => {
      const signedIn = await signIn(idp, { scope: 'openid offline_access' })
      const first = refreshTokenOf(signedIn)
      assert.doesNotMatch(first, /^ORT/)

      const rotated = await oidc.refreshTokenGrant(signedIn.config, first)
      assert.ok(rotated.refresh_token && rotated.refresh_token !== first)
      const rotatedAgain = await oidc.refreshTokenGrant(signedIn.config, rotated.refresh_token)
      assert.ok(rotatedAgain.refresh_token && rotatedAgain.refresh_token !== rotated.refresh_token)

      await assert.rejects(oidc.refreshTokenGrant(signedIn.config, first), isInvalidGrant)
    })

    test('asking for online_access and offline_access together is refused at the authorization endpoint', async () => {
      const config = await clientConfig(idp)
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid online_access offline_access',
        state: 'both',
      })
      const result = await createBrowser().follow(url, { until: toRedirectUri })
      assert.ok(result.matched, 'the error goes back to the client')
      assert.equal(result.url.searchParams.get('error'), 'invalid_request')
      assert.equal(
        result.url.searchParams.get('error_description'),
        'Cannot request both online_access and offline_access scopes',
      )
      assert.equal(result.url.searchParams.get('state'), 'both')
    })
  })

  describe('tokens', () => {
    test('access tokens are JWTs for the API, signed by a key in the JWKS, with sub, scope, client_id and the configured lifetime', async () => {
      const signedIn = await signIn(idp)
      const jwks = createRemoteJWKSet(new URL(String(signedIn.config.serverMetadata().jwks_uri)))
      const verify = async (token: string) =>
        (await jwtVerify(token, jwks, { issuer: idp.issuer, audience: API, typ: 'at+jwt' })).payload

      const claims = await verify(signedIn.tokens.access_token)
      assert.equal(claims.sub, 'user-alice')
      assert.equal(claims.client_id, 'web')
      assert.deepEqual(String(claims.scope).split(' ').sort(), ['email', 'online_access', 'openid', 'profile'])
      assert.equal(Number(claims.exp) - Number(claims.iat), 120)
      assert.equal(signedIn.tokens.expires_in, 120)

      const refreshed = await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
      const refreshedClaims = await verify(refreshed.access_token)
      assert.equal(refreshedClaims.sub, 'user-alice')
      assert.equal(refreshedClaims.aud, API)
    })

    test("Auth0's audience parameter selects the API and an unknown audience is refused", async () => {
      const signedIn = await signIn(idp, { params: { audience: API } })
      assert.equal(decodeJwt(signedIn.tokens.access_token).aud, API)

      const url = oidc.buildAuthorizationUrl(signedIn.config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid',
        audience: 'https://unknown.example',
      })
      const refused = await createBrowser().follow(url, { until: toRedirectUri })
      assert.equal(refused.url.searchParams.get('error'), 'invalid_target')
    })

    test('ID tokens carry sid, sub, name and email, also for a client without back-channel logout', async () => {
      for (const clientId of ['web', 'plain']) {
        const claims = (await signIn(idp, { clientId })).tokens.claims()
        assert.ok(claims, 'an ID token')
        assert.equal(typeof claims.sid, 'string', `sid for ${clientId}`)
        assert.equal(claims.sub, 'user-alice')
        assert.equal(claims.name, 'Alice Example')
        assert.equal(claims.email, 'alice@example.com')
      }
      const openidOnly = (await signIn(idp, { scope: 'openid online_access' })).tokens.claims()
      assert.equal(openidOnly?.name, undefined, 'no profile claims without the profile scope')
    })

    test('DPoP binds the access tokens of code and refresh exchanges to the key (token_type DPoP, cnf.jkt)', async () => {
      const config = await clientConfig(idp)
      const keyPair = await oidc.randomDPoPKeyPair()
      const dpop = oidc.getDPoPHandle(config, keyPair)
      const thumbprint = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey))

      const signedIn = await signIn(idp, { dpop })
      assert.equal(signedIn.tokens.token_type, 'dpop')
      assert.deepEqual(decodeJwt(signedIn.tokens.access_token).cnf, { jkt: thumbprint })

      const refreshed = await oidc.refreshTokenGrant(config, refreshTokenOf(signedIn), undefined, { DPoP: dpop })
      assert.equal(refreshed.token_type, 'dpop')
      assert.deepEqual(decodeJwt(refreshed.access_token).cnf, { jkt: thumbprint })
    })
  })

  describe('logout', () => {
    async function verifyLogoutToken(token: string, clientId: string): Promise<JWTPayload> {
      const config = await clientConfig(idp, clientId)
      const jwks = createRemoteJWKSet(new URL(String(config.serverMetadata().jwks_uri)))
      return (
        await jwtVerify(token, jwks, { issuer: idp.issuer, audience: clientId, typ: 'logout+jwt', maxTokenAge: 120 })
      ).payload
    }

    function logoutTokensFor(sid: unknown): Promise<JWTPayload[]> {
      return Promise.all(
        receiver.tokens.filter((token) => decodeJwt(token).sid === sid).map((token) => verifyLogoutToken(token, 'web')),
      )
    }

    test('RP-initiated logout followed by a browser ends the session, lands on post_logout_redirect_uri and sends a back-channel logout', async () => {
      const signedIn = await signIn(idp)
      const sid = signedIn.tokens.claims()?.sid
      const idToken = signedIn.tokens.id_token
      assert.ok(idToken)

      const logoutUrl = oidc.buildEndSessionUrl(signedIn.config, {
        id_token_hint: idToken,
        post_logout_redirect_uri: POST_LOGOUT_URI,
        state: 'bye',
      })
      const landed = await signedIn.browser.follow(logoutUrl, { until: (url) => url.href.startsWith(POST_LOGOUT_URI) })
      assert.ok(
        landed.matched,
        `expected post_logout_redirect_uri, ended at ${landed.url.href} (${landed.response.status})`,
      )
      assert.equal(landed.url.searchParams.get('state'), 'bye')

      await assert.rejects(oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn)), isInvalidGrant)
      assert.equal(signedIn.browser.cookie(idp.issuer, 'idp_session'), undefined, 'the IdP session cookie is deleted')

      const [logoutToken, ...more] = await logoutTokensFor(sid)
      assert.equal(more.length, 0)
      assert.ok(logoutToken, 'a logout token for the session')
      assert.equal(logoutToken.sub, 'user-alice')
      assert.deepEqual(logoutToken.events, { 'http://schemas.openid.net/event/backchannel-logout': {} })
      assert.equal(typeof logoutToken.jti, 'string')
      assert.equal(logoutToken.nonce, undefined)
    })

    test("revokeSessions ends every session of one user: their ORTs fail, another user's keep working, and clients get logout tokens", async () => {
      const carolOne = await signIn(idp, { user: CAROL })
      const carolTwo = await signIn(idp, { user: CAROL })
      const bob = await signIn(idp, { user: BOB })

      assert.equal(await idp.revokeSessions('user-carol'), 2)

      await assert.rejects(oidc.refreshTokenGrant(carolOne.config, refreshTokenOf(carolOne)), isInvalidGrant)
      await assert.rejects(oidc.refreshTokenGrant(carolTwo.config, refreshTokenOf(carolTwo)), isInvalidGrant)
      const bobRefreshed = await oidc.refreshTokenGrant(bob.config, refreshTokenOf(bob))
      assert.equal(bobRefreshed.claims()?.sub, 'user-bob')

      for (const signedIn of [carolOne, carolTwo]) {
        const tokens = await logoutTokensFor(signedIn.tokens.claims()?.sid)
        assert.equal(tokens.length, 1)
        assert.equal(tokens[0]?.sub, 'user-carol')
      }
      assert.equal((await logoutTokensFor(bob.tokens.claims()?.sid)).length, 0)
      assert.equal(await idp.revokeSessions('user-carol'), 0, 'nothing left to revoke')
    })

    test('the /__dev/revoke-sessions hook revokes over HTTP with a form or JSON body', async () => {
      const revokeDave = (init: RequestInit) =>
        fetch(`${idp.issuer}/__dev/revoke-sessions`, { method: 'POST', ...init })

      const viaForm = await signIn(idp, { user: DAVE })
      const formResponse = await revokeDave({ body: new URLSearchParams({ sub: 'user-dave' }) })
      assert.equal(formResponse.status, 200)
      assert.deepEqual(await formResponse.json(), { sub: 'user-dave', revoked: 1 })
      await assert.rejects(oidc.refreshTokenGrant(viaForm.config, refreshTokenOf(viaForm)), isInvalidGrant)

      const viaJson = await signIn(idp, { user: DAVE })
      const jsonResponse = await revokeDave({
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sub: 'user-dave' }),
      })
      assert.deepEqual(await jsonResponse.json(), { sub: 'user-dave', revoked: 1 })
      await assert.rejects(oidc.refreshTokenGrant(viaJson.config, refreshTokenOf(viaJson)), isInvalidGrant)

      const missing = await revokeDave({ body: new URLSearchParams() })
      assert.equal(missing.status, 400)
    })
  })

  describe('login page', () => {
    test('shows a plain HTML form with username, password and a login button, and refuses a wrong password', async () => {
      const config = await clientConfig(idp)
      const browser = createBrowser()
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid online_access' })
      const page = (await browser.follow(url, { until: toRedirectUri })).response

      assert.equal(page.status, 200)
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/)
      assert.match(page.url.pathname, /^\/interaction\/[\w-]+$/)
      assert.match(page.text, /<input id="username" name="username" type="text"/)
      assert.match(page.text, /<input id="password" name="password" type="password"/)
      assert.match(page.text, /<button id="login" type="submit">/)
      assert.doesNotMatch(page.text, /<script/i)
      const form = findForm(page, 'username')
      assert.equal(form?.method, 'POST')
      assert.equal(form?.action.href, page.url.href)

      const refused = await browser.post(page.url, { username: 'alice', password: 'wrong' })
      assert.equal(refused.status, 401)
      assert.match(refused.text, /Wrong username or password/)
      assert.match(refused.text, /value="alice"/, 'the username is kept')
      assert.equal(browser.cookie(idp.issuer, 'idp_session'), undefined, 'no IdP session after a failed login')

      const accepted = await browser.post(page.url, { username: 'alice', password: 'alice-password' })
      assert.equal(accepted.status, 303)
      const landed = await browser.follow(accepted, { until: toRedirectUri })
      assert.ok(landed.url.searchParams.get('code'), 'an authorization code after consent was granted automatically')
      const session = browser.cookie(idp.issuer, 'idp_session')
      assert.equal(session?.httpOnly, true)
    })

    test('a signed-in browser is sent back to the client without the login form (SSO)', async () => {
      const signedIn = await signIn(idp)
      const url = oidc.buildAuthorizationUrl(signedIn.config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid online_access',
      })
      const again = await signedIn.browser.follow(url, { until: toRedirectUri })
      assert.ok(again.matched)
      assert.ok(again.url.searchParams.get('code'))
    })

    test('loginAtDevIdp reports wrong credentials instead of returning', async () => {
      const config = await clientConfig(idp)
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid' })
      await assert.rejects(
        loginAtDevIdp(createBrowser(), url, { username: 'alice', password: 'nope' }, { until: toRedirectUri }),
        /login as alice failed with HTTP 401: Wrong username or password/,
      )
    })
  })

  describe('statistics', () => {
    test('counts every token endpoint request by grant type, failures included, and resets', async () => {
      const signedIn = await signIn(idp)
      idp.resetStats()
      await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
      await assert.rejects(oidc.refreshTokenGrant(signedIn.config, 'not-a-token'), isInvalidGrant)
      const unsupported = await fetch(`${idp.issuer}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-password' }),
      })
      assert.equal(unsupported.status, 400)

      const expected = { tokenRequests: { refresh_token: 2, password: 1 } }
      assert.deepEqual(idp.stats(), expected)
      assert.deepEqual(await (await fetch(`${idp.issuer}/__dev/stats`)).json(), expected)

      idp.resetStats()
      assert.deepEqual(idp.stats(), { tokenRequests: {} })
    })
  })
})

describe('dev IdP session lifetimes', { concurrency: true }, () => {
  test('exchanging an ORT every 0.7 s keeps a 3 s idle session alive well past 6 s', async (t) => {
    // Idle 3 s rather than 2 s: on a loaded machine one exchange can take over a second.
    const idp = await idpForTest(t, { sessionIdleSeconds: 3, clockToleranceSeconds: 0 })
    const signedIn = await signIn(idp)
    const started = Date.now()
    while (Date.now() - started < 6300) {
      await sleep(700)
      const refreshed = await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
      assert.ok(refreshed.access_token)
    }
  })

  test('an ORT not used for longer than the idle timeout gets invalid_grant', async (t) => {
    const idp = await idpForTest(t, { sessionIdleSeconds: 2, clockToleranceSeconds: 0 })
    const signedIn = await signIn(idp)
    await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
    await sleep(2200)
    await assert.rejects(oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn)), isInvalidGrant)
  })

  test('exchanges stop at the absolute session end even though each one extends the idle timeout', async (t) => {
    // Absolute 4 s rather than 3 s: oidc-provider keeps expiry in whole seconds, so a session
    // ends up to 1 s before its nominal time. With idle 2 s and absolute 4 s, a success after
    // 3 s proves the idle extension and a failure after 4 s proves the absolute cap.
    const idp = await idpForTest(t, { sessionIdleSeconds: 2, sessionAbsoluteSeconds: 4, clockToleranceSeconds: 0 })
    const beforeLogin = Date.now()
    const signedIn = await signIn(idp)
    const afterLogin = Date.now()
    const outcomes: Array<{ at: number; ok: boolean }> = []
    while (Date.now() - afterLogin < 4400) {
      await sleep(700)
      const ok = await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn)).then(
        () => true,
        (error: unknown) => {
          assert.ok(isInvalidGrant(error), String(error))
          return false
        },
      )
      outcomes.push({ at: Date.now(), ok })
    }
    for (const { at, ok } of outcomes) {
      if (at - beforeLogin < 3000) assert.ok(ok, `exchange ${at - beforeLogin} ms after login must succeed`)
      if (at - afterLogin > 4050) assert.equal(ok, false, `exchange ${at - afterLogin} ms after login must fail`)
    }
    const firstFailure = outcomes.findIndex(({ ok }) => !ok)
    assert.ok(firstFailure > 0, 'some exchanges succeed, then they fail')
    assert.ok(
      outcomes.slice(firstFailure).every(({ ok }) => !ok),
      'once ended, the session stays ended',
    )
  })
})

describe('dev IdP token endpoint faults', { concurrency: true }, () => {
  const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`
  /** A refresh grant as raw HTTP, to see statuses and headers openid-client would turn into errors. */
  const refreshOverHttp = (idp: DevIdp, refreshToken: string, signal?: AbortSignal) =>
    fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
      ...(signal ? { signal } : {}),
    })
  const hook = (idp: DevIdp, name: string, body: URLSearchParams | Record<string, unknown>) =>
    fetch(`${idp.issuer}/__dev/${name}`, {
      method: 'POST',
      ...(body instanceof URLSearchParams
        ? { body }
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    })

  test('setTokenDelay holds every token request, which is counted in stats on arrival; 0 turns it off', async (t) => {
    const idp = await idpForTest(t)
    const signedIn = await signIn(idp)
    idp.resetStats()
    idp.setTokenDelay(600)

    const started = Date.now()
    let settledAt: number | undefined
    const pending = oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn)).finally(() => {
      settledAt = Date.now()
    })
    while ((idp.stats().tokenRequests.refresh_token ?? 0) === 0) await sleep(5)
    const countedAfter = Date.now() - started
    assert.ok(countedAfter < 400, `counted ${countedAfter} ms after sending, before the delay ended`)
    assert.equal(settledAt, undefined, 'the exchange is still waiting')

    const refreshed = await pending
    assert.equal(refreshed.claims()?.sub, 'user-alice', 'then handled normally')
    assert.ok(Number(settledAt) - started >= 590, `answered after ${Number(settledAt) - started} ms`)
    assert.deepEqual(idp.stats(), { tokenRequests: { refresh_token: 1 } }, 'counted once')

    idp.setTokenDelay(0)
    const quick = Date.now()
    await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
    assert.ok(Date.now() - quick < 400, 'no delay any more')
    assert.throws(() => idp.setTokenDelay(-1), TypeError)
  })

  test('a delayed request whose client disconnects is dropped: the rotating refresh token it carried is not consumed', async (t) => {
    const idp = await idpForTest(t)
    const signedIn = await signIn(idp, { scope: 'openid offline_access' })
    const refreshToken = refreshTokenOf(signedIn)
    idp.setTokenDelay(400)
    await assert.rejects(refreshOverHttp(idp, refreshToken, AbortSignal.timeout(100)), { name: 'TimeoutError' })
    await sleep(500)
    idp.setTokenDelay(0)
    assert.equal(idp.stats().tokenRequests.refresh_token, 1, 'it arrived')
    // Had it been processed late, the token would be consumed and this reuse would fail.
    const rotated = await oidc.refreshTokenGrant(signedIn.config, refreshToken)
    assert.ok(rotated.refresh_token && rotated.refresh_token !== refreshToken)
  })

  test('failTokenRequests answers the next requests with the status, an OAuth error and Retry-After, without processing them', async (t) => {
    const idp = await idpForTest(t)
    const signedIn = await signIn(idp, { scope: 'openid offline_access' })
    const refreshToken = refreshTokenOf(signedIn)
    idp.resetStats()

    idp.failTokenRequests({ status: 503, count: 2 })
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      const failed = await refreshOverHttp(idp, refreshToken)
      assert.equal(failed.status, 503, `attempt ${attempt}`)
      assert.match(failed.headers.get('content-type') ?? '', /^application\/json/)
      assert.equal(failed.headers.get('retry-after'), null)
      assert.equal(failed.headers.get('cache-control'), 'no-store')
      assert.deepEqual(await failed.json(), { error: 'temporarily_unavailable' })
    }
    idp.failTokenRequests({ status: 429, count: 1, retryAfter: 7 })
    const limited = await refreshOverHttp(idp, refreshToken)
    assert.equal(limited.status, 429)
    assert.equal(limited.headers.get('retry-after'), '7')
    assert.deepEqual(await limited.json(), { error: 'temporarily_unavailable' })

    // Not processed: the rotating refresh token was never consumed, and it works now.
    const rotated = await oidc.refreshTokenGrant(signedIn.config, refreshToken)
    assert.ok(rotated.refresh_token && rotated.refresh_token !== refreshToken)
    assert.deepEqual(idp.stats(), { tokenRequests: { refresh_token: 4 } }, 'failures are counted')

    idp.failTokenRequests({ status: 500, count: 5 })
    idp.failTokenRequests({ status: 500, count: 0 })
    assert.equal((await refreshOverHttp(idp, rotated.refresh_token)).status, 200, 'count 0 cancels pending failures')
    assert.throws(() => idp.failTokenRequests({ status: 200, count: 1 }), TypeError)
    assert.throws(() => idp.failTokenRequests({ status: 503, count: 1.5 }), TypeError)
  })

  test('the /__dev/token-delay and /__dev/token-failures hooks take a form or JSON and refuse bad values', async (t) => {
    const idp = await idpForTest(t)
    const signedIn = await signIn(idp)
    const ort = refreshTokenOf(signedIn)

    const delayed = await hook(idp, 'token-delay', new URLSearchParams({ ms: '300' }))
    assert.deepEqual([delayed.status, await delayed.json()], [200, { ms: 300 }])
    const started = Date.now()
    assert.equal((await refreshOverHttp(idp, ort)).status, 200)
    assert.ok(Date.now() - started >= 290, 'the form set the delay')
    assert.equal((await hook(idp, 'token-delay', { ms: 0 })).status, 200)

    const failing = await hook(idp, 'token-failures', { status: 503, count: 1, retryAfter: 2 })
    assert.deepEqual([failing.status, await failing.json()], [200, { status: 503, count: 1, retryAfter: 2 }])
    const failed = await refreshOverHttp(idp, ort)
    assert.deepEqual([failed.status, failed.headers.get('retry-after')], [503, '2'])
    assert.equal((await hook(idp, 'token-failures', new URLSearchParams({ status: '429', count: '1' }))).status, 200)
    assert.deepEqual([(await refreshOverHttp(idp, ort)).status], [429])
    assert.equal((await refreshOverHttp(idp, ort)).status, 200)

    for (const [name, body] of [
      ['token-delay', { ms: -5 }],
      ['token-delay', new URLSearchParams({ ms: 'soon' })],
      ['token-delay', {}],
      ['token-failures', { status: 200, count: 1 }],
      ['token-failures', { status: 503 }],
      ['token-failures', new URLSearchParams({ status: '503', count: '1', retryAfter: 'later' })],
    ] as const) {
      const refused = await hook(idp, name, body)
      assert.equal(
        refused.status,
        400,
        `${name} ${JSON.stringify(body instanceof URLSearchParams ? body.toString() : body)}`,
      )
      assert.equal(((await refused.json()) as { error?: string }).error, 'invalid_request')
    }
    assert.equal((await refreshOverHttp(idp, ort)).status, 200, 'refused values changed nothing')
  })
})

describe('dev IdP with extra APIs (Auth0 multi-resource refresh tokens)', () => {
  const ORDERS = 'https://orders.bffgate.test'
  const BILLING = 'https://billing.bffgate.test'
  const isInvalidTarget = (error: unknown) =>
    error instanceof oidc.ResponseBodyError && error.error === 'invalid_target' && error.status === 400

  test('one ORT is exchanged for tokens of the default API and of each extra API, by audience or resource, and is never rotated', async (t) => {
    const idp = await idpForTest(t, {
      extraApis: [{ audience: ORDERS }, { audience: BILLING, scopes: 'openid read:billing' }],
    })
    const signedIn = await signIn(idp)
    const ort = refreshTokenOf(signedIn)
    const jwks = createRemoteJWKSet(new URL(String(signedIn.config.serverMetadata().jwks_uri)))
    const claimsFor = async (audience: string, token: string) =>
      (await jwtVerify(token, jwks, { issuer: idp.issuer, audience, typ: 'at+jwt' })).payload
    const refresh = async (parameters?: Record<string, string>) => {
      const response = await oidc.refreshTokenGrant(signedIn.config, ort, parameters)
      assert.equal('refresh_token' in response, false, 'an ORT is never rotated')
      return response.access_token
    }

    assert.equal(decodeJwt(signedIn.tokens.access_token).aud, API, 'the code exchange keeps the default API')
    const orders = await claimsFor(ORDERS, await refresh({ audience: ORDERS }))
    assert.deepEqual([orders.aud, orders.sub, orders.client_id], [ORDERS, 'user-alice', 'web'])
    assert.deepEqual(
      String(orders.scope).split(' ').sort(),
      ['email', 'online_access', 'openid', 'profile'],
      "scopes default to the default API's",
    )
    assert.equal((await claimsFor(API, await refresh())).aud, API, 'no audience: the default API')
    assert.equal((await claimsFor(ORDERS, await refresh({ resource: ORDERS }))).aud, ORDERS, 'RFC 8707 resource')
    const billing = await claimsFor(BILLING, await refresh({ audience: BILLING }))
    assert.equal(billing.scope, 'openid', 'only scopes this API knows')
    assert.equal((await claimsFor(API, await refresh({ audience: API }))).aud, API)

    await assert.rejects(refresh({ audience: 'https://unknown.bffgate.test' }), isInvalidTarget)
    await assert.rejects(refresh({ resource: 'https://unknown.bffgate.test' }), isInvalidTarget)
    assert.equal(
      (await claimsFor(ORDERS, await refresh({ audience: ORDERS }))).aud,
      ORDERS,
      'the ORT still works after refusals',
    )
  })

  test("a login with Auth0's audience of an extra API makes it the default of later exchanges; without extra APIs an audience other than the API is refused", async (t) => {
    const idp = await idpForTest(t, { extraApis: [{ audience: ORDERS }] })
    const signedIn = await signIn(idp, { params: { audience: ORDERS } })
    assert.equal(decodeJwt(signedIn.tokens.access_token).aud, ORDERS)
    assert.equal(
      decodeJwt((await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))).access_token).aud,
      ORDERS,
    )
    assert.equal(
      decodeJwt(
        (await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn), { audience: API })).access_token,
      ).aud,
      API,
    )

    const plain = await idpForTest(t)
    const plainSignedIn = await signIn(plain)
    await assert.rejects(
      oidc.refreshTokenGrant(plainSignedIn.config, refreshTokenOf(plainSignedIn), { audience: ORDERS }),
      isInvalidTarget,
    )
    const same = await oidc.refreshTokenGrant(plainSignedIn.config, refreshTokenOf(plainSignedIn), { audience: API })
    assert.equal(decodeJwt(same.access_token).aud, API)
  })

  test('extra API audiences must be absolute URIs and unique', async () => {
    await assert.rejects(startDevIdp({ clients: clientsFor(), extraApis: [{ audience: 'orders' }] }), TypeError)
    await assert.rejects(startDevIdp({ clients: clientsFor(), extraApis: [{ audience: API }] }), TypeError)
  })
})

describe('dev IdP with two users', () => {
  test("revokeSessions('user-bob') ends Bob's session and leaves Alice's session, ORT and SSO untouched", async (t) => {
    const idp = await idpForTest(t, {
      users: [
        { username: 'alice', password: 'alice-password', sub: 'user-alice' },
        { username: 'bob', password: 'bob-password', sub: 'user-bob' },
      ],
    })
    const alice = await signIn(idp)
    const bob = await signIn(idp, { user: BOB })

    assert.equal(await idp.revokeSessions('user-bob'), 1)
    await assert.rejects(oidc.refreshTokenGrant(bob.config, refreshTokenOf(bob)), isInvalidGrant)
    assert.equal((await oidc.refreshTokenGrant(alice.config, refreshTokenOf(alice))).claims()?.sub, 'user-alice')
    const url = oidc.buildAuthorizationUrl(alice.config, { redirect_uri: REDIRECT_URI, scope: 'openid online_access' })
    assert.ok(
      (await alice.browser.follow(url, { until: toRedirectUri })).matched,
      'Alice is still signed in at the IdP',
    )
    assert.equal(await idp.revokeSessions('user-bob'), 0)
  })
})

describe('dev IdP restarts', () => {
  test('stop() makes the IdP unreachable and start() brings it back on the same port with the same tokens', async (t) => {
    const idp = await idpForTest(t)
    const signedIn = await signIn(idp)
    const port = idp.port

    await idp.stop()
    await assert.rejects(fetch(`${idp.issuer}/.well-known/openid-configuration`), TypeError)
    await idp.start()

    assert.equal(idp.port, port)
    const refreshed = await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
    assert.equal(refreshed.claims()?.sub, 'user-alice')
  })

  test('test hooks are not served when testHooks is false', async (t) => {
    const idp = await idpForTest(t, { testHooks: false })
    assert.equal((await fetch(`${idp.issuer}/__dev/stats`)).status, 404)
  })
})

describe('test browser cookie jar', () => {
  let server: Server
  let origin: string

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      if (url.pathname === '/set') {
        res.setHeader('set-cookie', [
          '__Host-session=abc; Path=/; Secure; HttpOnly; SameSite=Strict',
          '__Host-bad=1; Path=/app; Secure',
          'scoped=1; Path=/app',
          'short=1; Max-Age=1',
        ])
      } else if (url.pathname === '/clear') {
        res.setHeader('set-cookie', [
          'scoped=; Path=/app; Max-Age=0',
          '__Host-session=; Path=/; Secure; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
        ])
      }
      res.end(req.headers.cookie ?? '')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  test('stores __Host- Secure cookies from http loopback, scopes by path, refuses invalid prefixes and honours Max-Age and Expires', async () => {
    const browser = createBrowser()
    await browser.get(`${origin}/set`)

    const session = browser.cookie(`${origin}/`, '__Host-session')
    assert.ok(session, 'a Secure cookie is kept for http://127.0.0.1 (a secure context in browsers)')
    assert.deepEqual(
      {
        secure: session.secure,
        httpOnly: session.httpOnly,
        sameSite: session.sameSite,
        path: session.path,
        hostOnly: session.hostOnly,
      },
      { secure: true, httpOnly: true, sameSite: 'Strict', path: '/', hostOnly: true },
    )
    assert.equal('domain' in session.attributes, false)
    assert.equal(browser.cookie(`${origin}/app`, '__Host-bad'), undefined, '__Host- with Path=/app is refused')

    assert.equal((await browser.get(`${origin}/`)).text, '__Host-session=abc; short=1')
    assert.equal((await browser.get(`${origin}/app/x`)).text, 'scoped=1; __Host-session=abc; short=1')
    assert.equal(
      (await browser.get(`${origin}/application`)).text,
      '__Host-session=abc; short=1',
      'Path=/app does not match /application',
    )

    const short = browser.cookie(`${origin}/`, 'short')
    assert.ok(
      short?.expires !== undefined && Math.abs(short.expires - (Date.now() + 1000)) < 500,
      'Max-Age=1 expires a second from now',
    )

    await browser.get(`${origin}/clear`)
    assert.equal((await browser.get(`${origin}/app/x`)).text, 'short=1', 'Max-Age=0 and a past Expires delete cookies')
  })
})

describe('dev IdP client authentication', () => {
  /** 401 invalid_client, in the body or (after Basic credentials) in a WWW-Authenticate challenge. */
  const isInvalidClient = (error: unknown) =>
    (error instanceof oidc.ResponseBodyError && error.error === 'invalid_client' && error.status === 401) ||
    (error instanceof oidc.WWWAuthenticateChallengeError &&
      error.status === 401 &&
      error.cause.some((challenge) => challenge.parameters.error === 'invalid_client'))
  const discover = (idp: DevIdp, clientId: string, auth: oidc.ClientAuth, metadata?: Partial<oidc.ClientMetadata>) =>
    oidc.discovery(new URL(idp.issuer), clientId, metadata, auth, { execute: [oidc.allowInsecureRequests] })

  test('each client must authenticate with its registered method (basic, post or private_key_jwt); any other method gets invalid_client', async (t) => {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'signer-1', alg: 'ES256', use: 'sig' }
    const idp = await idpForTest(t, {
      clients: [
        {
          client_id: 'basic',
          client_secret: SECRET,
          redirect_uris: [REDIRECT_URI],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        {
          client_id: 'post',
          client_secret: SECRET,
          redirect_uris: [REDIRECT_URI],
          token_endpoint_auth_method: 'client_secret_post',
        },
        {
          client_id: 'signer',
          redirect_uris: [REDIRECT_URI],
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [publicJwk] },
        },
      ],
    })
    const signerKey = { key: privateKey, kid: 'signer-1' }
    const methods: Record<string, () => oidc.ClientAuth> = {
      basic: () => oidc.ClientSecretBasic(SECRET),
      post: () => oidc.ClientSecretPost(SECRET),
      signer: () => oidc.PrivateKeyJwt(signerKey),
    }
    for (const clientId of Object.keys(methods)) {
      const right = await discover(idp, clientId, methods[clientId]!())
      const signedIn = await signIn(idp, { config: right })
      assert.equal(decodeJwt(signedIn.tokens.access_token).client_id, clientId)
      const refreshed = await oidc.refreshTokenGrant(right, refreshTokenOf(signedIn))
      assert.ok(refreshed.access_token, `${clientId}: refresh with the registered method`)
      for (const other of Object.keys(methods).filter((id) => id !== clientId)) {
        const wrong = await discover(idp, clientId, methods[other]!())
        await assert.rejects(
          oidc.refreshTokenGrant(wrong, refreshTokenOf(signedIn)),
          isInvalidClient,
          `${clientId} authenticating like ${other}`,
        )
      }
    }

    const { privateKey: otherKey } = await generateKeyPair('ES256')
    const forged = await discover(idp, 'signer', oidc.PrivateKeyJwt({ key: otherKey, kid: 'signer-1' }))
    await assert.rejects(
      oidc.refreshTokenGrant(forged, 'any-refresh-token'),
      isInvalidClient,
      'an assertion signed by another key',
    )
    const wrongSecret = await discover(idp, 'post', oidc.ClientSecretPost('not-the-secret'))
    await assert.rejects(oidc.refreshTokenGrant(wrongSecret, 'any-refresh-token'), isInvalidClient, 'a wrong secret')
  })

  test('registerClient adds a client at runtime; a static client id or invalid metadata is refused', async (t) => {
    const idp = await idpForTest(t)
    await assert.rejects(
      oidc.refreshTokenGrant(await discover(idp, 'late', oidc.ClientSecretPost(SECRET)), 'x'),
      isInvalidClient,
      'unknown before registration',
    )
    await idp.registerClient({
      client_id: 'late',
      client_secret: SECRET,
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'client_secret_post',
    })
    const late = await discover(idp, 'late', oidc.ClientSecretPost(SECRET))
    const signedIn = await signIn(idp, { config: late })
    assert.equal(decodeJwt(signedIn.tokens.access_token).client_id, 'late')
    await assert.rejects(
      idp.registerClient({ client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT_URI] }),
      /configured statically/,
    )
    await assert.rejects(
      idp.registerClient({
        client_id: 'keyless',
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: 'private_key_jwt',
      }),
    )
    await assert.rejects(
      oidc.refreshTokenGrant(await discover(idp, 'keyless', oidc.ClientSecretPost(SECRET)), 'x'),
      isInvalidClient,
      'a refused registration is not kept',
    )
  })
})

describe('dev IdP pushed authorization requests (PAR)', () => {
  const ORDERS = 'https://orders.bffgate.test'

  test('discovery advertises the PAR endpoint and a pushed login sends the browser only client_id and request_uri', async (t) => {
    const idp = await idpForTest(t)
    const config = await clientConfig(idp)
    assert.equal(config.serverMetadata().pushed_authorization_request_endpoint, `${idp.issuer}/request`)
    assert.equal(config.serverMetadata().require_pushed_authorization_requests ?? false, false)
    const url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'S256',
    })
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri'])
    assert.match(url.searchParams.get('request_uri') ?? '', /^urn:ietf:params:oauth:request_uri:/)
    const signedIn = await signIn(idp, { par: true })
    assert.match(refreshTokenOf(signedIn), /^ORT/, 'online_access via PAR yields an ORT')
  })

  test('the Auth0 workarounds hold for pushed requests: offline_access without prompt=consent, the audience parameter, the both-scopes error', async (t) => {
    const idp = await idpForTest(t, { extraApis: [{ audience: ORDERS }] })
    const offline = await signIn(idp, { par: true, scope: 'openid offline_access' })
    const first = refreshTokenOf(offline)
    assert.doesNotMatch(first, /^ORT/)
    const rotated = await oidc.refreshTokenGrant(offline.config, first)
    assert.ok(rotated.refresh_token && rotated.refresh_token !== first, 'an offline refresh token rotates')

    const ordersLogin = await signIn(idp, { par: true, params: { audience: ORDERS } })
    assert.equal(decodeJwt(ordersLogin.tokens.access_token).aud, ORDERS)

    const config = await clientConfig(idp)
    await assert.rejects(
      oidc.buildAuthorizationUrlWithPAR(config, {
        redirect_uri: REDIRECT_URI,
        scope: 'openid online_access offline_access',
      }),
      (error: unknown) =>
        error instanceof oidc.ResponseBodyError &&
        error.error === 'invalid_request' &&
        error.error_description === 'Cannot request both online_access and offline_access scopes',
    )
  })

  test('requirePushedAuthorizationRequests refuses a plain authorization request and accepts a pushed one', async (t) => {
    const idp = await idpForTest(t, { requirePushedAuthorizationRequests: true })
    const config = await clientConfig(idp)
    assert.equal(config.serverMetadata().require_pushed_authorization_requests, true)
    const plain = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 'plain' })
    const refused = await createBrowser().follow(plain, { until: toRedirectUri })
    const error = refused.matched ? refused.url.searchParams.get('error') : refused.response.text
    assert.match(String(error), /invalid_request/)
    assert.match(
      refused.matched ? String(refused.url.searchParams.get('error_description')) : refused.response.text,
      /Pushed Authorization Request must be used/i,
    )
    const signedIn = await signIn(idp, { par: true })
    assert.ok(signedIn.tokens.access_token)
  })
})

describe('dev IdP DPoP nonces at the token endpoint', () => {
  /** A raw refresh grant carrying a DPoP proof without `nonce`, to see the IdP's answer unretried. */
  async function refreshWithoutNonce(idp: DevIdp, keys: CryptoKeyPair, refreshToken: string): Promise<Response> {
    const proof = await new SignJWT({ htm: 'POST', htu: `${idp.issuer}/token`, jti: oidc.randomState() })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(keys.publicKey) })
      .setIssuedAt()
      .sign(keys.privateKey)
    return fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`, dpop: proof },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    })
  }

  test('with requireDpopNonce a proof without nonce gets use_dpop_nonce and a DPoP-Nonce; openid-client retries once and succeeds', async (t) => {
    const idp = await idpForTest(t, { requireDpopNonce: true })
    const keys = await oidc.randomDPoPKeyPair('ES256')
    const config = await clientConfig(idp)
    idp.resetStats()
    const signedIn = await signIn(idp, { dpop: oidc.getDPoPHandle(config, keys) })
    assert.equal(signedIn.tokens.token_type.toLowerCase(), 'dpop')
    assert.equal(idp.stats().tokenRequests.authorization_code, 2, 'the first attempt was refused for its missing nonce')

    idp.resetStats()
    const refreshed = await oidc.refreshTokenGrant(config, refreshTokenOf(signedIn), undefined, {
      DPoP: oidc.getDPoPHandle(config, keys),
    })
    assert.equal(
      (decodeJwt(refreshed.access_token).cnf as { jkt?: string }).jkt,
      await calculateJwkThumbprint(await exportJWK(keys.publicKey)),
    )
    assert.equal(idp.stats().tokenRequests.refresh_token, 2, 'a fresh handle knows no nonce yet')

    const response = await refreshWithoutNonce(idp, keys, refreshTokenOf(signedIn))
    assert.equal(response.status, 400)
    assert.equal(((await response.json()) as { error: string }).error, 'use_dpop_nonce')
    assert.match(response.headers.get('dpop-nonce') ?? '', /^[A-Za-z0-9_-]{20,}$/)

    const bearer = await oidc.refreshTokenGrant(config, refreshTokenOf(signedIn))
    assert.equal(bearer.token_type.toLowerCase(), 'bearer', 'a request without DPoP needs no nonce')
  })

  test('without requireDpopNonce a DPoP exchange takes one request and the IdP hands out no nonces', async (t) => {
    const idp = await idpForTest(t)
    const keys = await oidc.randomDPoPKeyPair('ES256')
    const config = await clientConfig(idp)
    idp.resetStats()
    const signedIn = await signIn(idp, { dpop: oidc.getDPoPHandle(config, keys) })
    assert.equal(signedIn.tokens.token_type.toLowerCase(), 'dpop')
    assert.equal(idp.stats().tokenRequests.authorization_code, 1)
    const response = await refreshWithoutNonce(idp, keys, refreshTokenOf(signedIn))
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('dpop-nonce'), null)
  })
})

describe('dev IdP issued tokens', () => {
  test('issuedTokens lists every access, refresh and ID token the token endpoint issued, and nothing from failed requests', async (t) => {
    const idp = await idpForTest(t)
    assert.deepEqual(idp.issuedTokens(), [])
    const signedIn = await signIn(idp)
    const { access_token: accessToken, refresh_token: refreshToken, id_token: idToken } = signedIn.tokens
    assert.deepEqual(idp.issuedTokens(), [accessToken, refreshToken, idToken])
    const refreshed = await oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn))
    assert.deepEqual(idp.issuedTokens(), [
      accessToken,
      refreshToken,
      idToken,
      refreshed.access_token,
      refreshed.id_token,
    ])
    await assert.rejects(oidc.refreshTokenGrant(signedIn.config, 'not-a-refresh-token'), isInvalidGrant)
    idp.failTokenRequests({ status: 503, count: 1 })
    await assert.rejects(oidc.refreshTokenGrant(signedIn.config, refreshTokenOf(signedIn)))
    assert.equal(idp.issuedTokens().length, 5, 'failed requests issue nothing')
    const list = idp.issuedTokens()
    list.length = 0
    assert.equal(idp.issuedTokens().length, 5, 'callers get a copy')
  })
})
