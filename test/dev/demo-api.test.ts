/**
 * The demo API accepts only valid access tokens of its issuer and echoes what it received.
 * Most tokens are minted here by a tiny fake issuer (so expired or foreign tokens are cheap to
 * make); the DPoP tests use real tokens from the development IdP.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import * as oidc from 'openid-client'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey, JWK, JWTPayload } from 'jose'
import { startDemoApi } from '../../dev/api/index.ts'
import type { DemoApi, DemoApiEcho } from '../../dev/api/index.ts'
import { startDevIdp } from '../../dev/idp/index.ts'
import type { DevIdp } from '../../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp } from '../helpers/browser.ts'
import { freePort } from '../helpers/redis.ts'

const AUDIENCE = 'https://api.bffgate.test'

interface FakeIssuer {
  issuer: string
  /** Signs an access token with the issuer's key; `claims` override the defaults. */
  mint(claims?: JWTPayload, options?: { typ?: string; key?: CryptoKey; kid?: string }): Promise<string>
  close(): Promise<void>
}

/** Serves a discovery document and a JWKS, like an IdP that only signs tokens. */
async function startFakeIssuer(port = 0): Promise<FakeIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256')
  const kid = randomUUID()
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  let issuer = ''
  const server: Server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : req.url === '/jwks'
          ? { keys: [jwk] }
          : undefined
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}))
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    async mint(claims = {}, options = {}) {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({
        scope: 'openid read:data',
        client_id: 'web',
        iss: issuer,
        aud: AUDIENCE,
        sub: 'user-alice',
        iat: now,
        exp: now + 300,
        jti: randomUUID(),
        ...claims,
      })
        .setProtectedHeader({ alg: 'RS256', typ: options.typ ?? 'at+jwt', kid: options.kid ?? kid })
        .sign(options.key ?? privateKey)
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

describe('demo API with bearer tokens', () => {
  let issuer: FakeIssuer
  let api: DemoApi

  before(async () => {
    issuer = await startFakeIssuer()
    api = await startDemoApi({ issuer: issuer.issuer, audience: AUDIENCE })
  })
  after(async () => {
    await api.close()
    await issuer.close()
  })

  const call = (path: string, init: RequestInit = {}) => fetch(`${api.url}${path}`, init)
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

  test('a valid token gets 200 with the method, path and query, claims and received headers', async () => {
    const token = await issuer.mint()
    const response = await call('/orders/42?expand=items', {
      method: 'PATCH',
      headers: { ...bearer(token), 'x-trace': 'abc' },
      body: 'hello',
    })
    assert.equal(response.status, 200)
    const echo = (await response.json()) as DemoApiEcho
    assert.equal(echo.method, 'PATCH')
    assert.equal(echo.path, '/orders/42?expand=items')
    assert.equal(echo.claims.sub, 'user-alice')
    assert.equal(echo.claims.scope, 'openid read:data')
    assert.equal(echo.headers['x-trace'], 'abc')
    assert.deepEqual(echo.body, { bytes: 5, sha256: createHash('sha256').update('hello').digest('hex') })

    const logged = api.requests().at(-1)
    assert.deepEqual(
      {
        method: logged?.method,
        url: logged?.url,
        authorized: logged?.authorized,
        status: logged?.status,
        trace: logged?.headers['x-trace'],
      },
      { method: 'PATCH', url: '/orders/42?expand=items', authorized: true, status: 200, trace: 'abc' },
    )
  })

  test('a request without a token gets 401 unauthorized with a Bearer challenge', async () => {
    const response = await call('/anything', { method: 'DELETE' })
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('www-authenticate'), 'Bearer')
    assert.deepEqual(await response.json(), { error: 'unauthorized' })
    assert.equal(api.requests().at(-1)?.authorized, false)
  })

  test('tampered, expired, wrong-audience, wrong-issuer, wrong-type and foreign-key tokens get 401 invalid_token', async () => {
    const valid = await issuer.mint()
    const [header, payload, signature] = valid.split('.')
    const otherKey = (await generateKeyPair('RS256')).privateKey
    const now = Math.floor(Date.now() / 1000)
    const refused: Record<string, string> = {
      tampered: `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()), sub: 'mallory' })).toString('base64url')}.${signature}`,
      expired: await issuer.mint({ iat: now - 600, exp: now - 60 }),
      'wrong audience': await issuer.mint({ aud: 'https://other-api.example' }),
      'wrong issuer': await issuer.mint({ iss: 'https://evil.example' }),
      'ID token type': await issuer.mint({}, { typ: 'JWT' }),
      'foreign key': await issuer.mint({}, { key: otherKey }),
      'not a JWT': 'opaque-token-value',
    }
    for (const [label, token] of Object.entries(refused)) {
      const response = await call('/resource', { headers: bearer(token) })
      assert.equal(response.status, 401, label)
      assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"', label)
      assert.deepEqual(await response.json(), { error: 'invalid_token' }, label)
    }
  })

  test('rejectNext(n) refuses the next n requests with a valid token as invalid_token, and logs them as forced', async () => {
    const token = await issuer.mint()
    api.rejectNext(2)
    assert.equal((await call('/no-token')).status, 401, 'a request without a token is refused as before')
    assert.equal(
      (await call('/bad-token', { headers: bearer('opaque-token-value') })).status,
      401,
      'and so is an invalid token',
    )
    assert.equal(api.requests().at(-1)?.forcedRejection, undefined, 'neither uses up a forced rejection')

    for (const attempt of [1, 2]) {
      const response = await call(`/forced/${attempt}`, { method: 'POST', headers: bearer(token), body: 'discarded' })
      assert.equal(response.status, 401, `attempt ${attempt}`)
      assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
      assert.deepEqual(await response.json(), { error: 'invalid_token' })
      const logged = api.requests().at(-1)
      assert.deepEqual(
        {
          url: logged?.url,
          status: logged?.status,
          authorized: logged?.authorized,
          forced: logged?.forcedRejection,
          sub: logged?.claims?.sub,
        },
        { url: `/forced/${attempt}`, status: 401, authorized: false, forced: true, sub: 'user-alice' },
      )
    }
    assert.equal((await call('/after', { headers: bearer(token) })).status, 200, 'the same token is accepted again')

    api.rejectNext(3)
    api.rejectNext(0)
    assert.equal((await call('/cancelled', { headers: bearer(token) })).status, 200, 'rejectNext(0) cancels')
    assert.throws(() => api.rejectNext(-1), TypeError)
  })

  test('concurrent requests never take more forced rejections than asked for', async () => {
    const token = await issuer.mint()
    api.rejectNext(3)
    const statuses = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        call(`/concurrent/${index}`, { headers: bearer(token) }).then((response) => response.status),
      ),
    )
    assert.deepEqual(statuses.toSorted(), [200, 200, 200, 200, 200, 401, 401, 401])
  })

  test('setDelay(ms) holds every answer, successes and refusals, while the request is already logged', async () => {
    const token = await issuer.mint()
    api.setDelay(400)
    try {
      const started = Date.now()
      const pending = call('/slow', { headers: bearer(token) })
      while (api.requests().at(-1)?.url !== '/slow') await sleep(5)
      assert.equal(api.requests().at(-1)?.status, 0, 'logged on arrival, not answered yet')
      assert.equal((await pending).status, 200)
      assert.ok(Date.now() - started >= 390, `answered after ${Date.now() - started} ms`)
      assert.equal(api.requests().at(-1)?.status, 200)

      const refusedAt = Date.now()
      assert.equal((await call('/slow-refusal')).status, 401)
      assert.ok(Date.now() - refusedAt >= 390, 'refusals wait too')

      await assert.rejects(call('/timeout', { headers: bearer(token), signal: AbortSignal.timeout(100) }), {
        name: 'TimeoutError',
      })
    } finally {
      api.setDelay(0)
    }
    const quick = Date.now()
    assert.equal((await call('/fast', { headers: bearer(token) })).status, 200)
    assert.ok(Date.now() - quick < 300, 'setDelay(0) turns it off')
    assert.throws(() => api.setDelay(Number.NaN), TypeError)
  })

  test('a 12 MiB body is streamed and hashed correctly', async () => {
    const body = randomBytes(12 * 1024 * 1024)
    const response = await call('/upload', {
      method: 'PUT',
      headers: bearer(await issuer.mint()),
      body: new Uint8Array(body),
    })
    assert.equal(response.status, 200)
    const echo = (await response.json()) as DemoApiEcho
    assert.deepEqual(echo.body, { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') })
  })

  test('an unauthenticated 4 MiB upload gets 401 and its body is discarded', async () => {
    const response = await call('/upload', { method: 'PUT', body: new Uint8Array(4 * 1024 * 1024) })
    assert.equal(response.status, 401)
    assert.deepEqual(await response.json(), { error: 'unauthorized' })
    assert.equal((await call('/after', { headers: bearer(await issuer.mint()) })).status, 200, 'the API keeps serving')
  })
})

describe('demo API with an issuer that is not reachable', () => {
  test('answers 503 while discovery fails, then verifies once the issuer is up', async (t) => {
    const port = await freePort()

    const api = await startDemoApi({ issuer: `http://127.0.0.1:${port}`, audience: AUDIENCE })
    t.after(() => api.close())
    const down = await fetch(`${api.url}/`, { headers: { authorization: 'Bearer a.b.c' } })
    assert.equal(down.status, 503)
    assert.deepEqual(await down.json(), { error: 'temporarily_unavailable' })

    const issuer = await startFakeIssuer(port)
    t.after(() => issuer.close())
    const up = await fetch(`${api.url}/`, { headers: { authorization: `Bearer ${await issuer.mint()}` } })
    assert.equal(up.status, 200)
  })
})

describe('demo API with DPoP-bound tokens from the dev IdP', () => {
  const redirectUri = 'http://127.0.0.1:9/callback'
  let idp: DevIdp
  let api: DemoApi
  let keyPair: CryptoKeyPair
  let accessToken: string
  let publicJwk: JWK

  before(async () => {
    idp = await startDevIdp({ clients: [{ client_id: 'web', client_secret: 'secret', redirect_uris: [redirectUri] }] })
    api = await startDemoApi({ issuer: idp.issuer, audience: AUDIENCE })
    const config = await oidc.discovery(new URL(idp.issuer), 'web', undefined, oidc.ClientSecretBasic('secret'), {
      execute: [oidc.allowInsecureRequests],
    })
    keyPair = await oidc.randomDPoPKeyPair()
    publicJwk = await exportJWK(keyPair.publicKey)
    const verifier = oidc.randomPKCECodeVerifier()
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid online_access',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    })
    const landed = await loginAtDevIdp(
      createBrowser(),
      url,
      { username: 'alice', password: 'alice-password' },
      { until: (u) => u.href.startsWith(redirectUri) },
    )
    const tokens = await oidc.authorizationCodeGrant(config, landed.url, { pkceCodeVerifier: verifier }, undefined, {
      DPoP: oidc.getDPoPHandle(config, keyPair),
    })
    assert.equal(tokens.token_type, 'dpop')
    accessToken = tokens.access_token
  })
  after(async () => {
    await api.close()
    await idp.close()
  })

  async function proof(method: string, url: string, overrides: JWTPayload = {}): Promise<string> {
    const ath = createHash('sha256').update(accessToken).digest('base64url')
    return new SignJWT({
      htm: method,
      htu: url,
      iat: Math.floor(Date.now() / 1000),
      jti: randomUUID(),
      ath,
      ...overrides,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
      .sign(keyPair.privateKey)
  }

  const dpopCall = (path: string, dpop: string | undefined, method = 'GET') =>
    fetch(`${api.url}${path}`, {
      method,
      headers: { authorization: `DPoP ${accessToken}`, ...(dpop ? { dpop } : {}) },
    })

  test('a bound token with a matching proof is accepted', async () => {
    const response = await dpopCall('/me?x=1', await proof('GET', `${api.url}/me`))
    assert.equal(response.status, 200)
    const echo = (await response.json()) as DemoApiEcho
    assert.equal(echo.claims.sub, 'user-alice')
    assert.equal(typeof (echo.claims.cnf as { jkt?: unknown }).jkt, 'string')
  })

  test('a forced rejection of a DPoP request challenges with the DPoP scheme', async () => {
    api.rejectNext(1)
    const forced = await dpopCall('/me', await proof('GET', `${api.url}/me`))
    assert.equal(forced.status, 401)
    assert.equal(forced.headers.get('www-authenticate'), 'DPoP error="invalid_token"')
    assert.deepEqual(await forced.json(), { error: 'invalid_token' })
    assert.equal((await dpopCall('/me', await proof('GET', `${api.url}/me`))).status, 200)
  })

  test('a bound token presented as Bearer is refused', async () => {
    const response = await fetch(`${api.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
  })

  test('missing, replayed, wrong-method, wrong-URL and wrong-token proofs are refused with invalid_dpop_proof', async () => {
    const replayed = await proof('GET', `${api.url}/me`)
    assert.equal((await dpopCall('/me', replayed)).status, 200)
    const cases: Record<string, Response> = {
      missing: await dpopCall('/me', undefined),
      replayed: await dpopCall('/me', replayed),
      'wrong method': await dpopCall('/me', await proof('POST', `${api.url}/me`)),
      'wrong URL': await dpopCall('/me', await proof('GET', `${api.url}/other`)),
      'wrong token': await dpopCall('/me', await proof('GET', `${api.url}/me`, { ath: 'x' })),
      stale: await dpopCall('/me', await proof('GET', `${api.url}/me`, { iat: Math.floor(Date.now() / 1000) - 600 })),
    }
    for (const [label, response] of Object.entries(cases)) {
      assert.equal(response.status, 401, label)
      assert.equal(response.headers.get('www-authenticate'), 'DPoP error="invalid_dpop_proof"', label)
    }
  })

  test('openid-client fetchProtectedResource with the DPoP handle is accepted', async () => {
    const config = await oidc.discovery(new URL(idp.issuer), 'web', undefined, oidc.ClientSecretBasic('secret'), {
      execute: [oidc.allowInsecureRequests],
    })
    const response = await oidc.fetchProtectedResource(
      config,
      accessToken,
      new URL(`${api.url}/orders`),
      'POST',
      'payload',
      undefined,
      {
        DPoP: oidc.getDPoPHandle(config, keyPair),
      },
    )
    assert.equal(response.status, 200)
    assert.equal(((await response.json()) as DemoApiEcho).body.bytes, 7)
  })
})
