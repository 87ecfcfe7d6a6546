/**
 * ID token validation, proven against a misbehaving IdP: the dev IdP corrupts the ID token of
 * its next authorization_code token response on demand, and bffgate (openid-client plus its own
 * future-`iat` check) must refuse every kind of bad token, and every tampered callback, without
 * creating a session.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { compactVerify, createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JSONWebKeySet } from 'jose'
import * as oidc from 'openid-client'
import {
  ID_TOKEN_MISBEHAVIOURS,
  MISBEHAVIOUR_SHIFT_SECONDS,
  WRONG_AUDIENCE,
  WRONG_ISSUER,
  startDevIdp,
  type DevIdp,
  type IdTokenMisbehaviour,
} from '../../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp, type Browser, type BrowserResponse } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { USER, startStack, type Stack } from '../helpers/stack.ts'

/** Which check each misbehaviour must break, and nothing else. */
const BROKEN: Record<IdTokenMisbehaviour, string[]> = {
  bad_signature: ['signature'],
  alg_none: ['alg', 'kid', 'signature'],
  wrong_iss: ['iss'],
  wrong_aud: ['aud'],
  missing_nonce: ['nonce'],
  wrong_nonce: ['nonce'],
  expired: ['exp'],
  future_iat: ['iat'],
  missing_sub: ['sub'],
  signed_with_unknown_key: ['signature'],
  signed_with_unknown_kid: ['kid', 'signature'],
}

/** What openid-client (or bffgate's own `iat` check) says about each one: the named check failed. */
const REFUSAL: Record<IdTokenMisbehaviour, RegExp> = {
  bad_signature: /JWT signature verification failed/,
  alg_none: /unexpected JWT "alg" header parameter/,
  wrong_iss: /unexpected JWT "iss" \(issuer\) claim value/,
  wrong_aud: /unexpected JWT "aud" \(audience\) claim value/,
  missing_nonce: /JWT "nonce" \(nonce\) claim missing/,
  wrong_nonce: /unexpected ID Token "nonce" claim value/,
  expired: /unexpected JWT "exp" \(expiration time\) claim value/,
  future_iat: /the ID token was issued in the future/,
  missing_sub: /JWT "sub" \(subject\) claim missing/,
  signed_with_unknown_key: /JWT signature verification failed/,
  signed_with_unknown_kid: /no applicable keys found/,
}

/** Claims removed by a misbehaviour. */
const REMOVED: Partial<Record<IdTokenMisbehaviour, string>> = { missing_nonce: 'nonce', missing_sub: 'sub' }

describe('dev IdP ID token misbehaviour', () => {
  const SECRET = 'id-token-misbehaviour-secret'
  const REDIRECT_URI = 'http://127.0.0.1:9/callback'
  const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`
  let idp: DevIdp
  let jwks: JSONWebKeySet
  let cleanClaimNames: string[]

  before(async () => {
    idp = await startDevIdp({
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT_URI] }],
      log: () => {},
    })
    jwks = (await (await fetch(`${idp.issuer}/jwks`)).json()) as JSONWebKeySet
    const clean = await codeFlow()
    cleanClaimNames = Object.keys(decodeJwt(clean.body.id_token)).sort()
  })
  after(async () => {
    await idp?.close()
  })

  interface TokenBody {
    id_token: string
    access_token: string
    token_type: string
    refresh_token?: string
    expires_in: number
  }

  /** Browser login and a raw code exchange, so the ID token is seen exactly as sent. */
  async function codeFlow(scope = 'openid profile email'): Promise<{ body: TokenBody; nonce: string }> {
    const verifier = oidc.randomPKCECodeVerifier()
    const nonce = oidc.randomNonce()
    const authorize = new URL(`${idp.issuer}/auth`)
    authorize.search = new URLSearchParams({
      client_id: 'web',
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope,
      state: oidc.randomState(),
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString()
    const landed = await loginAtDevIdp(createBrowser(), authorize, USER, {
      until: (u) => u.href.startsWith(REDIRECT_URI),
    })
    assert.ok(landed.matched, `expected a redirect to the client, ended at ${landed.url.href}`)
    const code = landed.url.searchParams.get('code')
    assert.ok(code)
    const res = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
      }),
    })
    assert.equal(res.status, 200)
    return { body: (await res.json()) as TokenBody, nonce }
  }

  /** The checks an ID token fails, among those a relying party makes. */
  async function brokenChecks(idToken: string, nonce: string): Promise<string[]> {
    const header = decodeProtectedHeader(idToken)
    const claims = decodeJwt(idToken)
    const now = Math.floor(Date.now() / 1000)
    const broken: string[] = []
    if (header.alg !== 'RS256') broken.push('alg')
    if (!jwks.keys.some((key) => key.kid === header.kid)) broken.push('kid')
    try {
      await compactVerify(idToken, createLocalJWKSet(jwks))
    } catch {
      broken.push('signature')
    }
    if (claims.iss !== idp.issuer) broken.push('iss')
    if (claims.aud !== 'web') broken.push('aud')
    if (claims.nonce !== nonce) broken.push('nonce')
    if (typeof claims.exp !== 'number' || claims.exp <= now) broken.push('exp')
    if (typeof claims.iat !== 'number' || claims.iat > now + 5) broken.push('iat')
    if (claims.sub !== 'user-alice') broken.push('sub')
    return broken
  }

  test('an ID token from the IdP left alone passes every check', async () => {
    const { body, nonce } = await codeFlow()
    assert.deepEqual(await brokenChecks(body.id_token, nonce), [])
    assert.equal(idp.pendingMisbehaviour(), undefined)
  })

  for (const kind of ID_TOKEN_MISBEHAVIOURS) {
    test(`misbehaveNextTokenResponse('${kind}') breaks exactly the ${BROKEN[kind].join(', ')} check of the next ID token and nothing else of the response`, async () => {
      idp.misbehaveNextTokenResponse(kind)
      assert.equal(idp.pendingMisbehaviour(), kind)
      const { body, nonce } = await codeFlow()
      assert.equal(idp.pendingMisbehaviour(), undefined, 'one-shot')
      assert.deepEqual(await brokenChecks(body.id_token, nonce), BROKEN[kind])

      const claims = decodeJwt(body.id_token)
      const removed = REMOVED[kind]
      assert.deepEqual(
        Object.keys(claims).sort(),
        cleanClaimNames.filter((name) => name !== removed),
        'the same claims, less the removed one',
      )
      assert.equal(body.token_type, 'Bearer')
      assert.match(body.access_token, /^ey/, 'the access token is untouched (a JWT for the API)')
      await compactVerify(body.access_token, createLocalJWKSet(jwks))

      const now = Math.floor(Date.now() / 1000)
      const header = decodeProtectedHeader(body.id_token)
      switch (kind) {
        case 'alg_none':
          assert.deepEqual({ ...header }, { alg: 'none' })
          assert.ok(body.id_token.endsWith('.'), 'empty signature')
          break
        case 'wrong_iss':
          assert.equal(claims.iss, WRONG_ISSUER)
          break
        case 'wrong_aud':
          assert.equal(claims.aud, WRONG_AUDIENCE)
          break
        case 'wrong_nonce':
          assert.equal(typeof claims.nonce, 'string')
          break
        case 'expired':
          assert.ok(
            Math.abs(Number(claims.exp) - (now - MISBEHAVIOUR_SHIFT_SECONDS)) <= 5,
            `exp ${claims.exp} an hour ago`,
          )
          break
        case 'future_iat':
          assert.ok(
            Math.abs(Number(claims.iat) - (now + MISBEHAVIOUR_SHIFT_SECONDS)) <= 5,
            `iat ${claims.iat} in an hour`,
          )
          assert.ok(Number(claims.exp) > Number(claims.iat), 'exp still after iat')
          break
        case 'signed_with_unknown_key':
          assert.equal(header.kid, jwks.keys[0]?.kid, 'the real kid, a foreign key')
          break
        default:
          break
      }
      if (kind !== 'alg_none' && kind !== 'signed_with_unknown_kid') {
        assert.equal(header.kid, jwks.keys[0]?.kid)
        assert.equal(header.alg, 'RS256')
      }
    })
  }

  test('the misbehaviour waits for an authorization_code response: a refresh grant before it keeps its clean ID token', async () => {
    const first = await codeFlow('openid online_access')
    const ort = first.body.refresh_token
    assert.ok(ort, 'an online refresh token')
    idp.misbehaveNextTokenResponse('wrong_iss')
    const refreshed = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { authorization: basic },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: ort }),
    })
    assert.equal(refreshed.status, 200)
    assert.equal(decodeJwt(((await refreshed.json()) as TokenBody).id_token).iss, idp.issuer)
    assert.equal(idp.pendingMisbehaviour(), 'wrong_iss', 'still armed')

    const corrupted = await codeFlow()
    assert.deepEqual(await brokenChecks(corrupted.body.id_token, corrupted.nonce), ['iss'])
    const clean = await codeFlow()
    assert.deepEqual(await brokenChecks(clean.body.id_token, clean.nonce), [], 'the one after is clean again')
  })

  test("arming again replaces the pending misbehaviour, 'none' disarms it and an unknown kind is a TypeError", async () => {
    idp.misbehaveNextTokenResponse('expired')
    idp.misbehaveNextTokenResponse('missing_sub')
    assert.equal(idp.pendingMisbehaviour(), 'missing_sub')
    idp.misbehaveNextTokenResponse('none')
    assert.equal(idp.pendingMisbehaviour(), undefined)
    assert.throws(() => idp.misbehaveNextTokenResponse('bogus' as IdTokenMisbehaviour), TypeError)
    const { body, nonce } = await codeFlow()
    assert.deepEqual(await brokenChecks(body.id_token, nonce), [])
  })

  test('the /__dev/misbehave-next-token-response hook arms a kind from a form or JSON, tells the armed kind, disarms with none and refuses unknown kinds', async () => {
    const hook = `${idp.issuer}/__dev/misbehave-next-token-response`
    const post = (body: URLSearchParams | object) =>
      fetch(hook, {
        method: 'POST',
        ...(body instanceof URLSearchParams
          ? { body }
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      })

    const armed = await post(new URLSearchParams({ kind: 'wrong_nonce' }))
    assert.deepEqual([armed.status, await armed.json()], [200, { kind: 'wrong_nonce' }])
    assert.deepEqual(await (await fetch(hook)).json(), { kind: 'wrong_nonce' })
    const disarmed = await post({ kind: 'none' })
    assert.deepEqual([disarmed.status, await disarmed.json()], [200, { kind: 'none' }])
    assert.equal(idp.pendingMisbehaviour(), undefined)

    for (const body of [{ kind: 'bogus' }, {}, new URLSearchParams({ kind: '' }), { kind: 3 }]) {
      const refused = await post(body)
      assert.equal(refused.status, 400, JSON.stringify(body instanceof URLSearchParams ? body.toString() : body))
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_request')
    }
    assert.equal(idp.pendingMisbehaviour(), undefined, 'refused kinds arm nothing')

    assert.equal((await post({ kind: 'expired' })).status, 200)
    const { body, nonce } = await codeFlow()
    assert.deepEqual(await brokenChecks(body.id_token, nonce), ['exp'], 'armed over HTTP')
  })
})

describe('bffgate refuses bad ID tokens and tampered callbacks without creating a session', () => {
  const SESSION_COOKIE = '__Host-Http-bff'
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

  /** Every session, sid-index and sub-index key under the stack's prefix. */
  async function sessionKeys(): Promise<string[]> {
    const client = redis.client()
    const keys = await Promise.all(
      ['session:', 'bysid:', 'bysub:'].map((kind) => client.keys(`${stack.keyPrefix}${kind}*`)),
    )
    return keys.flat().sort()
  }

  const toCallback = (url: URL) => url.origin === stack.url && url.pathname === '/bff/callback'

  /** A browser login stopped at the redirect to bffgate's callback, which is not requested. */
  async function loginUntilCallback(): Promise<{ browser: Browser; callback: URL }> {
    const browser = createBrowser()
    const landed = await loginAtDevIdp(browser, `${stack.url}/bff/login`, USER, { until: toCallback })
    assert.ok(landed.matched, `expected the redirect to /bff/callback, ended at ${landed.url.href}`)
    return { browser, callback: landed.url }
  }

  /** Runs `attempt` and checks that it created no session, in the browser or in Redis; returns the new log lines. */
  async function withoutSession(
    attempt: () => Promise<{ browser: Browser; response: BrowserResponse }>,
  ): Promise<{ response: BrowserResponse; logs: Array<Record<string, unknown>> }> {
    const keysBefore = await sessionKeys()
    const logStart = stack.logs.lines.length
    const { browser, response } = await attempt()
    assert.equal(response.url.pathname, '/bff/callback', 'the chain ended at the callback')
    assert.equal(browser.cookie(stack.url, SESSION_COOKIE), undefined, 'no session cookie in the browser')
    assert.ok(
      !response.setCookies.some((line) => line.startsWith(`${SESSION_COOKIE}=`)),
      `no session cookie set: ${response.setCookies.join(' | ')}`,
    )
    assert.deepEqual(await sessionKeys(), keysBefore, 'no session key added in Redis')
    assert.equal(response.headers.get('cache-control'), 'no-store')
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/)
    const body = response.json<Record<string, unknown>>()
    assert.deepEqual(Object.keys(body).sort(), ['error', 'message'], response.text)
    assert.equal(typeof body.message, 'string')
    return { response, logs: stack.logs.lines.slice(logStart) }
  }

  const eventsOf = (logs: Array<Record<string, unknown>>) =>
    logs.map((line) => line.event).filter((event) => event !== undefined)

  test('the dev IdP advertises authorization_response_iss_parameter_supported and a clean login creates a session (the checks below can see one)', async () => {
    const discovery = (await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >
    assert.equal(discovery.authorization_response_iss_parameter_supported, true)
    const { callback } = await loginUntilCallback()
    assert.equal(callback.searchParams.get('iss'), stack.idp.issuer, 'the callback carries iss')

    const keysBefore = await sessionKeys()
    const { browser, result } = await stack.login()
    assert.equal(result.url.href, `${stack.url}/`)
    assert.ok(browser.cookie(stack.url, SESSION_COOKIE))
    const added = (await sessionKeys()).filter((key) => !keysBefore.includes(key))
    assert.ok(
      added.some((key) => key.startsWith(`${stack.keyPrefix}session:`)),
      `a session key was added: ${added.join(', ')}`,
    )
  })

  for (const kind of ID_TOKEN_MISBEHAVIOURS) {
    test(`an ID token with ${kind} ends the login with 502 idp_response_invalid, a login.failed log event and no session`, async () => {
      const codeExchanges = stack.idp.stats().tokenRequests.authorization_code ?? 0
      stack.idp.misbehaveNextTokenResponse(kind)
      const { response, logs } = await withoutSession(async () => {
        const browser = createBrowser()
        const result = await loginAtDevIdp(browser, `${stack.url}/bff/login`, USER)
        return { browser, response: result.response }
      })
      assert.equal(stack.idp.pendingMisbehaviour(), undefined, 'the corrupted response was sent')
      assert.equal(stack.idp.stats().tokenRequests.authorization_code, codeExchanges + 1, 'the code was exchanged once')
      assert.equal(response.status, 502, response.text)
      assert.equal(response.json<{ error: string }>().error, 'idp_response_invalid')
      const failed = logs.find((line) => line.event === 'login.failed')
      assert.ok(failed, `login.failed logged; events: ${eventsOf(logs).join(', ')}`)
      assert.equal(failed.kind, 'invalid_response')
      assert.match(
        String((failed.err as { message?: unknown } | undefined)?.message),
        REFUSAL[kind],
        'refused by the check the misbehaviour breaks',
      )
      assert.ok(
        logs.some((line) => line.event === 'request.failed' && line.code === 'BFF_ERR_IDP_RESPONSE_INVALID'),
        'the internal error code is logged',
      )
      assert.ok(!eventsOf(logs).includes('login.succeeded'))
    })
  }

  test('a callback whose state was changed is refused with 400 login_state_invalid and no session', async () => {
    const { response, logs } = await withoutSession(async () => {
      const { browser, callback } = await loginUntilCallback()
      callback.searchParams.set('state', oidc.randomState())
      return { browser, response: await browser.get(callback) }
    })
    assert.equal(response.status, 400)
    assert.equal(response.json<{ error: string }>().error, 'login_state_invalid')
    assert.ok(eventsOf(logs).includes('login.state_invalid'), eventsOf(logs).join(', '))
  })

  test('a callback without code is refused with 400 login_failed and no session, and the code is never exchanged', async () => {
    const codeExchanges = stack.idp.stats().tokenRequests.authorization_code ?? 0
    const { response, logs } = await withoutSession(async () => {
      const { browser, callback } = await loginUntilCallback()
      callback.searchParams.delete('code')
      return { browser, response: await browser.get(callback) }
    })
    assert.equal(stack.idp.stats().tokenRequests.authorization_code ?? 0, codeExchanges)
    assert.equal(response.status, 400, response.text)
    assert.equal(response.json<{ error: string }>().error, 'login_failed')
    assert.ok(eventsOf(logs).includes('login.failed'), eventsOf(logs).join(', '))
  })

  test('a callback carrying error=access_denied is answered 400 login_failed with a login.failed log event and no session', async () => {
    const { response, logs } = await withoutSession(async () => {
      const { browser, callback } = await loginUntilCallback()
      callback.searchParams.delete('code')
      callback.searchParams.set('error', 'access_denied')
      callback.searchParams.set('error_description', 'The user said no')
      return { browser, response: await browser.get(callback) }
    })
    assert.equal(response.status, 400)
    assert.equal(response.json<{ error: string }>().error, 'login_failed')
    const failed = logs.find((line) => line.event === 'login.failed')
    assert.ok(failed, eventsOf(logs).join(', '))
    assert.equal(failed.oauthError, 'access_denied')
  })

  test('a callback whose iss names another issuer (mix-up) is refused with 502 idp_response_invalid before the code is exchanged, and no session', async () => {
    const codeExchanges = stack.idp.stats().tokenRequests.authorization_code ?? 0
    const { response, logs } = await withoutSession(async () => {
      const { browser, callback } = await loginUntilCallback()
      callback.searchParams.set('iss', 'https://attacker-idp.example')
      return { browser, response: await browser.get(callback) }
    })
    assert.equal(response.status, 502, response.text)
    assert.equal(response.json<{ error: string }>().error, 'idp_response_invalid')
    assert.equal(
      stack.idp.stats().tokenRequests.authorization_code ?? 0,
      codeExchanges,
      'the code never went to the token endpoint',
    )
    assert.ok(eventsOf(logs).includes('login.failed'), eventsOf(logs).join(', '))
  })

  test('a callback whose iss was removed, though the IdP advertises it, is refused with 502 idp_response_invalid and no session', async () => {
    const codeExchanges = stack.idp.stats().tokenRequests.authorization_code ?? 0
    const { response } = await withoutSession(async () => {
      const { browser, callback } = await loginUntilCallback()
      callback.searchParams.delete('iss')
      return { browser, response: await browser.get(callback) }
    })
    assert.equal(response.status, 502, response.text)
    assert.equal(response.json<{ error: string }>().error, 'idp_response_invalid')
    assert.equal(stack.idp.stats().tokenRequests.authorization_code ?? 0, codeExchanges)
  })
})
