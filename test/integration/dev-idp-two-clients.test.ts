/**
 * The standalone development IdP (`node dev/idp/main.ts`, what Compose runs) serves two
 * clients, so that two SPAs can share one gateway (docs/frontends.md): each logs in over HTTP
 * with its own secret and redirect URI, gets tokens issued to it, and cannot use the other's.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { after, before, describe, test } from 'node:test'
import * as oidc from 'openid-client'
import { decodeJwt } from 'jose'
import { createBrowser, loginAtDevIdp } from '../helpers/browser.ts'

const ALICE = { username: 'alice', password: 'alice-password' }
const SHOP = {
  id: 'bffgate-dev',
  secret: 'shop-client-secret-for-the-test',
  redirect: 'http://127.0.0.1:9/bff/callback',
}
const ADMIN = {
  id: 'bffgate-admin',
  secret: 'admin-client-secret-for-the-test',
  redirect: 'http://127.0.0.1:9/admin/bff/callback',
}

let child: ChildProcess
let issuer: string

before(async () => {
  child = spawn(process.execPath, ['dev/idp/main.ts'], {
    cwd: new URL('../..', import.meta.url),
    env: {
      ...process.env,
      IDP_PORT: '0',
      IDP_CLIENT_SECRET: SHOP.secret,
      IDP_REDIRECT_URIS: SHOP.redirect,
      IDP_ADMIN_CLIENT_SECRET: ADMIN.secret,
      IDP_ADMIN_REDIRECT_URIS: ADMIN.redirect,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  // The start-up banner names the issuer and every client; give up after 30 s (a loaded machine).
  let out = ''
  child.stdout!.setEncoding('utf8')
  const started = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner naming both clients within 30 s: ${out}`)), 30_000)
    child.stdout!.on('data', (chunk: string) => {
      out += chunk
      const match = /issuer\s+(\S+)[\s\S]*client\s+bffgate-dev[\s\S]*client\s+bffgate-admin/.exec(out)
      if (match) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the IdP exited (${code}): ${out}`))
    })
  })
  issuer = await started
})

after(async () => {
  if (child.exitCode === null) {
    child.kill('SIGTERM')
    await once(child, 'exit')
  }
})

async function logIn(client: typeof SHOP, redirect = client.redirect) {
  const config = await oidc.discovery(new URL(issuer), client.id, client.secret, undefined, {
    execute: [oidc.allowInsecureRequests],
  })
  const verifier = oidc.randomPKCECodeVerifier()
  const state = oidc.randomState()
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope: 'openid profile online_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  })
  const landed = await loginAtDevIdp(createBrowser(), url, ALICE, { until: (u) => u.href.startsWith(redirect) })
  return { config, landed, verifier, state }
}

describe('the standalone dev IdP serves two clients', () => {
  test('each client logs in with its own redirect URI and secret and gets tokens issued to it', async () => {
    for (const client of [SHOP, ADMIN]) {
      const { config, landed, verifier, state } = await logIn(client)
      assert.ok(landed.matched, `${client.id}: ended at ${landed.url.href}`)
      const tokens = await oidc.authorizationCodeGrant(config, landed.url, {
        pkceCodeVerifier: verifier,
        expectedState: state,
      })
      assert.equal(tokens.claims()?.aud, client.id, 'the ID token is for this client')
      assert.equal(decodeJwt(tokens.access_token).client_id, client.id)
      assert.match(tokens.refresh_token ?? '', /^ORT/)
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!)
      assert.equal(decodeJwt(refreshed.access_token).client_id, client.id)
    }
  })

  test("a client cannot use the other's redirect URI, secret or refresh token", async () => {
    // The IdP answers the authorization request itself with 400 instead of redirecting to an unregistered URI.
    await assert.rejects(
      logIn(ADMIN, SHOP.redirect),
      /expected the dev IdP login page at \S+client_id=bffgate-admin\S*, got HTTP 400/,
    )
    const wrongSecret = await oidc.discovery(new URL(issuer), ADMIN.id, SHOP.secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    })
    const shop = await logIn(SHOP)
    const tokens = await oidc.authorizationCodeGrant(shop.config, shop.landed.url, {
      pkceCodeVerifier: shop.verifier,
      expectedState: shop.state,
    })
    await assert.rejects(
      oidc.refreshTokenGrant(wrongSecret, tokens.refresh_token!),
      (err: unknown) => err instanceof oidc.ResponseBodyError && err.error === 'invalid_client',
    )
    const admin = await oidc.discovery(new URL(issuer), ADMIN.id, ADMIN.secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    })
    await assert.rejects(
      oidc.refreshTokenGrant(admin, tokens.refresh_token!),
      (err: unknown) => err instanceof oidc.ResponseBodyError && err.error === 'invalid_grant',
      "the shop's refresh token is not the admin client's",
    )
  })
})
